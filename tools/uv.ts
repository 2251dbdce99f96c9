/**
 * uv at the nodes' pinned version (catalogs/tools.ts), in a virtual environment of its own made by
 * `python`, for the tools that resolve and install Python environments (npm run lock, npm run
 * vllm-cpu). `run` is the caller's: each reports a failed command its own way.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { TOOL_VERSIONS } from "../catalogs/tools";

export function ensureUv(
  parent: string,
  python: string,
  run: (cmd: string, args: string[]) => unknown,
): string {
  const venv = join(parent, `uv-${TOOL_VERSIONS.uv}`);
  const uv = join(venv, "bin", "uv");
  if (!existsSync(uv)) {
    run(python, ["-m", "venv", venv]);
    run(join(venv, "bin", "pip"), [
      "install",
      "--quiet",
      "--disable-pip-version-check",
      `uv==${TOOL_VERSIONS.uv}`,
    ]);
  }
  return uv;
}
