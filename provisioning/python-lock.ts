/**
 * Lock files on disk (catalogs/locks.ts keeps what they mean): reading one, summarizing it for the
 * index the planner reads (catalogs/python-locks.ts), and writing that index. Used by the renderer
 * (the text shipped to every node), the lab's mirror and `npm run lock`.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import {
  LOCKS_DIR,
  PROJECT_ROOT,
  SUMMARY_PINS,
  parseLock,
  type LockSummary,
  type PythonLock,
} from "../catalogs/locks";
import { LOCKS } from "../catalogs/python-locks";
import { UserError } from "../config/errors";

/** Reads a lock file (relative to the project, or absolute); undefined when there is none. */
export function readLockFile(path: string, root = PROJECT_ROOT): PythonLock | undefined {
  const abs = isAbsolute(path) ? path : join(root, path);
  if (!existsSync(abs)) return undefined;
  return parseLock(path, readFileSync(abs, "utf8"));
}

export function summarize(lock: PythonLock): LockSummary {
  const pins: Record<string, string> = {};
  for (const name of SUMMARY_PINS)
    if (lock.versions[name]) pins[name] = lock.versions[name].join(" / ");
  return {
    sha256: createHash("sha256").update(lock.text).digest("hex"),
    packages: Object.keys(lock.pins).length,
    pins,
  };
}

/**
 * The text of an indexed lock, held to the index: a lock edited by hand (or remade without
 * re-indexing) would ship what the plan did not check.
 */
export function indexedLockText(path: string, root = PROJECT_ROOT): string {
  const known = LOCKS[path];
  const lock = readLockFile(path, root);
  if (!known || !lock)
    throw new UserError(`${path} is not an indexed lock file (npm run lock -- --index)`);
  if (summarize(lock).sha256 !== known.sha256)
    throw new UserError(
      `${path} changed since it was indexed: run "npm run lock -- --index" and commit catalogs/python-locks.ts`,
    );
  return lock.text;
}

/** Every lock under locks/, summarized, as the index's source text. */
export function lockIndexSource(root = PROJECT_ROOT): string {
  const dir = join(root, LOCKS_DIR);
  const files = existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith(".txt"))
        .sort()
    : [];
  const entries = files.map((f) => {
    const path = `${LOCKS_DIR}/${f}`;
    return `  ${JSON.stringify(path)}: ${JSON.stringify(summarize(readLockFile(path, root)!))},`;
  });
  return [
    "// Written by `npm run lock` (tools/lock.ts) from the files in locks/: do not edit.",
    'import type { LockSummary } from "./locks";',
    "",
    "export const LOCKS: Readonly<Record<string, LockSummary>> = {",
    ...entries,
    "};",
    "",
  ].join("\n");
}

export function writeLockIndex(root = PROJECT_ROOT): string {
  const path = join(root, "catalogs", "python-locks.ts");
  writeFileSync(path, lockIndexSource(root));
  return path;
}
