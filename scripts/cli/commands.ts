import { clusterCommand } from './cluster-command.ts';
import type { CommandSpec } from './command-spec.ts';
import { countCommand } from './count-command.ts';
import { hitCommand } from './hit-command.ts';
import { loadCommand } from './load-command.ts';
import { topCommand } from './top-command.ts';
import { watchCommand } from './watch-command.ts';

/** Every command, in the order --help lists them. */
export const COMMANDS: readonly CommandSpec[] = [hitCommand, countCommand, topCommand, clusterCommand, watchCommand, loadCommand];
