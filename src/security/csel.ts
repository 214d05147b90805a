/**
 * Content selectors: the Nexus CSEL subset of JEXL, parsed once and evaluated against
 * `{ format, path }` (path with a leading '/').
 *
 *   expr    := or
 *   or      := and (('or' | '||') and)*
 *   and     := primary (('and' | '&&') primary)*
 *   primary := '(' expr ')' | ident op string
 *   ident   := 'format' | 'path'
 *   op      := '==' | '!=' | '=~' (regex, whole value, like Java's matches()) | '=^' (starts with)
 *
 * Pure: no database, no HTTP. Errors carry the 0-based position in the expression.
 */

export type CselIdentifier = 'format' | 'path';
export type CselOperator = '==' | '!=' | '=~' | '=^';

export type CselNode = { kind: 'and' | 'or'; left: CselNode; right: CselNode } | { kind: 'compare'; ident: CselIdentifier; op: CselOperator; value: string; regex?: RegExp };

export interface CselInput {
  format: string;
  path: string;
}

export class CselError extends Error {
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(`${message} at position ${position}`);
    this.name = 'CselError';
  }
}

/** Longest regular expression accepted after `=~`. */
export const MAX_REGEX_LENGTH = 1000;
/** Longest expression accepted at all. */
export const MAX_EXPRESSION_LENGTH = 10_000;

const IDENTIFIERS: readonly string[] = ['format', 'path'];

type Token =
  | { t: 'ident'; v: string; pos: number }
  | { t: 'string'; v: string; pos: number }
  | { t: 'op'; v: CselOperator; pos: number }
  | { t: 'and' | 'or' | '(' | ')'; pos: number }
  | { t: 'end'; pos: number };

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const two = src.slice(i, i + 2);
    if (two === '==' || two === '!=' || two === '=~' || two === '=^') {
      out.push({ t: 'op', v: two, pos: i });
      i += 2;
    } else if (two === '&&' || two === '||') {
      out.push({ t: two === '&&' ? 'and' : 'or', pos: i });
      i += 2;
    } else if (c === '(' || c === ')') {
      out.push({ t: c, pos: i });
      i++;
    } else if (c === '"' || c === "'") {
      const start = i;
      i++;
      let v = '';
      for (;;) {
        if (i >= src.length) throw new CselError('Unterminated string', start);
        const d = src[i];
        if (d === c) {
          i++;
          break;
        }
        if (d === '\\') {
          // JEXL's rules: \<quote> and \\ unescape, \uXXXX is a code unit, any other escape keeps
          // its backslash (so regular expressions like ".*\.jar" mean what they look like).
          const e = src[i + 1];
          if (e === undefined) throw new CselError('Unterminated string', start);
          if (e === c || e === '\\') {
            v += e;
            i += 2;
          } else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(src.slice(i + 2, i + 6))) {
            v += String.fromCharCode(parseInt(src.slice(i + 2, i + 6), 16));
            i += 6;
          } else {
            v += '\\' + e;
            i += 2;
          }
          continue;
        }
        v += d;
        i++;
      }
      out.push({ t: 'string', v, pos: start });
    } else if (/[A-Za-z_$]/.test(c)) {
      const start = i;
      while (i < src.length && /[A-Za-z0-9_$.]/.test(src[i])) i++;
      const word = src.slice(start, i);
      if (word === 'and' || word === 'or') out.push({ t: word, pos: start });
      else out.push({ t: 'ident', v: word, pos: start });
    } else {
      throw new CselError(`Unexpected character '${c}'`, i);
    }
  }
  out.push({ t: 'end', pos: src.length });
  return out;
}

/**
 * Regular expressions run on every content request a selector privilege is asked about, so
 * they are bounded: length, and no quantified group whose body is itself unboundedly
 * quantified (`(a+)+`, `(.*)*`), the shape behind catastrophic backtracking.
 */
function compileRegex(pattern: string, pos: number): RegExp {
  if (pattern.length > MAX_REGEX_LENGTH) throw new CselError(`Regular expression longer than ${MAX_REGEX_LENGTH} characters`, pos);
  if (hasNestedQuantifier(pattern)) throw new CselError('Regular expression with a nested unbounded quantifier (e.g. (a+)+) is not allowed', pos);
  try {
    return new RegExp(`^(?:${pattern})$`);
  } catch (e) {
    throw new CselError(`Invalid regular expression: ${(e as Error).message}`, pos);
  }
}

function hasNestedQuantifier(p: string): boolean {
  // Stack of "does this open group contain an unbounded quantifier".
  const stack: boolean[] = [];
  let inClass = false;
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') inClass = true;
    else if (c === '(') stack.push(false);
    else if (c === ')') {
      const inner = stack.pop() ?? false;
      const next = p[i + 1];
      const unboundedAfter = next === '*' || next === '+' || (next === '{' && /^\{\d*,\}/.test(p.slice(i + 1)));
      if (inner && unboundedAfter) return true;
      if (stack.length && (inner || unboundedAfter)) stack[stack.length - 1] = true;
    } else if ((c === '*' || c === '+' || (c === '{' && /^\{\d*,\}/.test(p.slice(i)))) && stack.length) {
      stack[stack.length - 1] = true;
    }
  }
  return false;
}

class Parser {
  private i = 0;
  constructor(private readonly tokens: Token[]) {}

  private peek(): Token {
    return this.tokens[this.i];
  }

  private next(): Token {
    return this.tokens[this.i++];
  }

  parse(): CselNode {
    if (this.peek().t === 'end') throw new CselError('Empty expression', 0);
    const node = this.or();
    const t = this.peek();
    if (t.t !== 'end') throw new CselError(`Unexpected ${describe(t)}`, t.pos);
    return node;
  }

  private or(): CselNode {
    let left = this.and();
    while (this.peek().t === 'or') {
      this.next();
      left = { kind: 'or', left, right: this.and() };
    }
    return left;
  }

  private and(): CselNode {
    let left = this.primary();
    while (this.peek().t === 'and') {
      this.next();
      left = { kind: 'and', left, right: this.primary() };
    }
    return left;
  }

  private primary(): CselNode {
    const t = this.next();
    if (t.t === '(') {
      const inner = this.or();
      const close = this.next();
      if (close.t !== ')') throw new CselError(`Expected ')' but found ${describe(close)}`, close.pos);
      return inner;
    }
    if (t.t !== 'ident') throw new CselError(`Expected 'format', 'path' or '(' but found ${describe(t)}`, t.pos);
    if (!IDENTIFIERS.includes(t.v)) throw new CselError(`Unknown identifier '${t.v}' (known: ${IDENTIFIERS.join(', ')})`, t.pos);
    const op = this.next();
    if (op.t !== 'op') throw new CselError(`Expected an operator (==, !=, =~, =^) but found ${describe(op)}`, op.pos);
    const value = this.next();
    if (value.t !== 'string') throw new CselError(`Expected a quoted string but found ${describe(value)}`, value.pos);
    const node: CselNode = { kind: 'compare', ident: t.v as CselIdentifier, op: op.v, value: value.v };
    if (op.v === '=~') node.regex = compileRegex(value.v, value.pos);
    return node;
  }
}

function describe(t: Token): string {
  switch (t.t) {
    case 'end':
      return 'end of expression';
    case 'ident':
      return `'${t.v}'`;
    case 'string':
      return `string "${t.v}"`;
    case 'op':
      return `'${t.v}'`;
    default:
      return `'${t.t}'`;
  }
}

/** Parses a CSEL expression; throws CselError (with position) on any syntax error. */
export function parseCsel(expression: string): CselNode {
  if (expression.length > MAX_EXPRESSION_LENGTH) throw new CselError(`Expression longer than ${MAX_EXPRESSION_LENGTH} characters`, MAX_EXPRESSION_LENGTH);
  return new Parser(tokenize(expression)).parse();
}

export function evaluateCsel(node: CselNode, input: CselInput): boolean {
  switch (node.kind) {
    case 'and':
      return evaluateCsel(node.left, input) && evaluateCsel(node.right, input);
    case 'or':
      return evaluateCsel(node.left, input) || evaluateCsel(node.right, input);
    case 'compare': {
      const v = input[node.ident];
      switch (node.op) {
        case '==':
          return v === node.value;
        case '!=':
          return v !== node.value;
        case '=^':
          return v.startsWith(node.value);
        case '=~':
          return node.regex!.test(v);
      }
    }
  }
}

/** A parsed selector, ready to evaluate many times. */
export interface CompiledCsel {
  readonly expression: string;
  matches(input: CselInput): boolean;
}

export function compileCsel(expression: string): CompiledCsel {
  const node = parseCsel(expression);
  return { expression, matches: (input) => evaluateCsel(node, input) };
}
