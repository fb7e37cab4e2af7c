// Structured JSON logs; human-readable when stdout is a terminal.
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type { Logger };

export function createLogger(level: LogLevel, options: { pretty?: boolean; destination?: NodeJS.WritableStream } = {}): Logger {
  const usePretty = options.pretty ?? (process.stdout.isTTY === true && !options.destination);
  const base = { level, base: { component: 'hrto' }, timestamp: pino.stdTimeFunctions.isoTime };
  if (usePretty) {
    return pino(base, pretty({ colorize: process.stdout.isTTY === true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,component' }));
  }
  return options.destination ? pino(base, options.destination) : pino(base);
}
