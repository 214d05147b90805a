import type { FormatPlugin } from '../src/repository/format.js';
import { docker } from './docker/index.js';
import { maven } from './maven/index.js';
import { npm } from './npm/index.js';
import { pypi } from './pypi/index.js';
import { raw } from './raw/index.js';
import { yum } from './yum/index.js';

/** Every format compiled into Stowage. A new format is one folder and one line here. */
export const formats: FormatPlugin[] = [raw, docker, npm, maven, pypi, yum];
