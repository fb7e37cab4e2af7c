// Structured JSON logs; human-readable when stdout is a terminal (the formatter is loaded only then).
import { pino, type Logger } from 'pino';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type { Logger };

/** JSON lines to `destination` (stdout by default). */
export function createLogger(level: LogLevel, destination?: NodeJS.WritableStream): Logger {
  const base = { level, base: { component: 'hrto' }, timestamp: pino.stdTimeFunctions.isoTime };
  return destination ? pino(base, destination) : pino(base);
}

/** Readable lines for a person at a terminal. */
export async function prettyLogger(level: LogLevel): Promise<Logger> {
  const { default: pretty } = await import('pino-pretty');
  return createLogger(level, pretty({ colorize: process.stdout.isTTY === true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,component' }));
}

/** What the controller logs to: pretty at a terminal, JSON otherwise. */
export function stdoutLogger(level: LogLevel): Promise<Logger> | Logger {
  return process.stdout.isTTY === true ? prettyLogger(level) : createLogger(level);
}
