/**
 * User errors: every problem with its path, the value given and what is allowed, all at once.
 * Commands print `ConfigError.message` and exit non-zero without a stack trace; the Pulumi program
 * throws it before any resource exists. Every error a person can act on is a `UserError` carrying
 * its exit code; `runCommand` is the one place that maps errors to output and exit codes.
 */

/** An error the user can act on: printed as its message (no stack trace), the command exits `exitCode`. */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
    /** Printed before the message ("[lab] "). */
    readonly label = "",
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** A command line that does not parse: the message, then the command's usage; exit 2. */
export class UsageError extends UserError {}

/**
 * Runs a command's body: its return value is the exit code; a `UserError` (or an error carrying a
 * numeric exitCode, as the client's do) prints one line and exits with its code; anything else is a
 * bug and keeps its trace.
 */
export async function runCommand(usage: string, fn: () => Promise<number> | number): Promise<void> {
  try {
    process.exitCode = await fn();
  } catch (e) {
    if (
      e instanceof UsageError ||
      (e instanceof TypeError && (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS"))
    ) {
      process.stderr.write(`${e.message}\n\n${usage}\n`);
      process.exitCode = 2;
    } else if (e instanceof UserError) {
      process.stderr.write(`${e.label}${e.message}\n`);
      process.exitCode = e.exitCode;
    } else if (e instanceof Error && typeof (e as { exitCode?: unknown }).exitCode === "number") {
      process.stderr.write(`${e.message}\n`);
      process.exitCode = (e as unknown as { exitCode: number }).exitCode;
    } else {
      throw e;
    }
  }
}

export interface Issue {
  /** Dotted path into the stack config, e.g. "vllm.tensorParallelSize" or "target.hosts[1].gpu". */
  readonly path: string;
  /** The value given (undefined when the key is missing). */
  readonly value: unknown;
  /** What is wrong and what is allowed. */
  readonly message: string;
}

export class ConfigError extends UserError {
  readonly issues: readonly Issue[];
  constructor(issues: readonly Issue[], heading = "The stack configuration is invalid") {
    super(formatIssues(issues, heading), 2);
    this.issues = issues;
  }
}

export function formatValue(value: unknown): string {
  if (value === undefined) return "(missing)";
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    // A value that contains itself (YAML aliases: "a: &x {b: *x}") has no JSON.
    return "{… (refers to itself)}";
  }
  if (text === undefined) return String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

export function formatIssues(issues: readonly Issue[], heading: string): string {
  const n = issues.length;
  const lines = issues.map(
    (i) => `  - ${i.path || "(top level)"}: ${formatValue(i.value)} — ${i.message}`,
  );
  return `${heading} (${n} problem${n === 1 ? "" : "s"}):\n${lines.join("\n")}`;
}

export function pathToString(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out;
}

/** Closest candidate by edit distance, for "did you mean" hints on unknown keys. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}
