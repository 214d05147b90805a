import type { TaskType } from '../../src/tasks/task-service.js';
export const mavenTasks: TaskType[] = [];
