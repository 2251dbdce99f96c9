/**
 * The shapes of the stack's free-text values: what a string may hold before it reaches a node, a
 * path or a command line. Line breaks split `vllm.args` (one argument per line) and `node.env`
 * (one variable per line), so a name or URL carrying one would add flags or variables of its own;
 * every string of the stack is held to "no control characters" first, then each field to its own
 * pattern. Pure; used by the schema and the parser.
 */
import type { Issue } from "./errors";
import { pathToString } from "./errors";

/** C0 controls (line breaks, tab, NUL), DEL, C1 controls and Unicode's line and paragraph separators. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/**
 * Every string in `value` with a control character, or blank: one issue each, at its path. A tab,
 * a NUL or a line break is never part of a name, a path, an address or a flag, and a value of
 * whitespace alone is a value left out.
 */
export function controlCharacterIssues(value: unknown, path: readonly PropertyKey[]): Issue[] {
  const out: Issue[] = [];
  // YAML aliases can make a value contain itself ("a: &x {b: *x}"): each object is walked once.
  const seen = new Set<object>();
  const walk = (v: unknown, p: readonly PropertyKey[]) => {
    if (v && typeof v === "object") {
      if (seen.has(v)) return;
      seen.add(v);
    }
    if (typeof v === "string") {
      if (CONTROL.test(v))
        out.push({
          path: pathToString(p),
          value: v,
          message:
            "holds a control character (a line break, tab, NUL, …): it would reach the node's files and command lines and split there (vllm.args and node.env hold one entry per line); allowed: printable characters only",
        });
      else if (v.length > 0 && v.trim() === "")
        out.push({
          path: pathToString(p),
          value: v,
          message: "is only whitespace; give a value or leave the key out",
        });
    } else if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...p, i]));
    else if (v && typeof v === "object")
      for (const k of Object.keys(v)) walk((v as Record<string, unknown>)[k], [...p, k]);
  };
  walk(value, path);
  return out;
}

/**
 * Why `id` is not a Hugging Face repository id, or undefined: huggingface_hub's
 * `validate_repo_id` (utils/_validators.py, REPO_ID_REGEX): "namespace/name" or "name", the name at
 * most 96 characters, both of [A-Za-z0-9_.-], not starting or ending with "-" or ".", no "--" or
 * "..", not ending in ".git".
 */
export function repoIdProblem(id: string): string | undefined {
  const rule =
    'must be a Hugging Face repository id, "namespace/name" (huggingface_hub validate_repo_id: A-Z a-z 0-9 _ . -, a name of ≤ 96, one "/", no "--" or "..", not starting or ending with "-" or ".", not ending in ".git")';
  const name = id.slice(id.indexOf("/") + 1);
  if (name.length > 96) return `has a ${name.length}-character name; ${rule}`;
  if (!/^(?:[A-Za-z0-9_](?:[\w.-]*\w)?\/)?[A-Za-z0-9_](?:[\w.-]*\w)?$/.test(id)) return rule;
  if (id.includes("--") || id.includes("..")) return rule;
  if (id.endsWith(".git")) return rule;
  return undefined;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6 = /^[0-9A-Fa-f:]+(%[A-Za-z0-9_.-]+)?$/;
/** RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens, ≤ 253 chars. */
const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/**
 * Why `address` is not a bare host (IPv4, IPv6 or a DNS name), or undefined. The common mistakes
 * get their own way out: the port, the user and the scheme have keys of their own.
 */
export function hostAddressProblem(address: string): string | undefined {
  const allowed = "allowed: an IPv4 or IPv6 address or a DNS name, nothing else";
  if (address !== address.trim()) return `has leading or trailing spaces; ${allowed}`;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(address))
    return `carries a URL scheme; give the host alone (SSH is implied), ${allowed}`;
  if (address.includes("@")) return `carries a user; give it as the host's "user" key, ${allowed}`;
  if (/^[^:]+:\d+$/.test(address) || /^\[[^\]]+\]:\d+$/.test(address))
    return `carries a port; give it as the host's "port" key, ${allowed}`;
  if (IPV4.test(address)) return undefined;
  if (address.includes(":")) return IPV6.test(address) ? undefined : allowed;
  if (/^[\d.]+$/.test(address)) return `is not a valid IPv4 address; ${allowed}`;
  return HOSTNAME.test(address) ? undefined : allowed;
}

/** The host is this machine itself: the other members of a cluster cannot reach it there. */
export function isLoopback(address: string): boolean {
  const a = address.toLowerCase().replace(/\.$/, "");
  return (
    a === "localhost" ||
    a.endsWith(".localhost") ||
    /^127\./.test(a) ||
    a === "::1" ||
    a === "0:0:0:0:0:0:0:1" ||
    a === "0.0.0.0"
  );
}

/**
 * URL characters (RFC 3986 unreserved, reserved and "%"), and "{" "}" for the mirror's {repo} and
 * {revision}; no quotes, backslashes, "$" or backticks, which a shell would read.
 */
export const URL_CHARS = "[A-Za-z0-9._~:/?#\\[\\]@!&()*+,;=%{}-]";

/**
 * A query parameter that carries a credential, by its name: a token, key, password, secret or a
 * signed URL's signature (S3's X-Amz-Signature / X-Amz-Credential / X-Amz-Security-Token, Azure
 * SAS's sig), alone or as the last word of the name (access_token, api_key, hf_token).
 */
const CREDENTIAL_PARAM =
  /(^|[_.-])(token|key|apikey|password|passwd|pwd|secret|signature|sig|auth|authorization|credential|credentials)$/i;

/**
 * Why `url` carries a credential, or undefined. Index, mirror and hub URLs are written to the
 * node's world-readable node.env, to command lines and to the stack's state in plain text.
 */
export function urlCredentialProblem(url: string): string | undefined {
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(url);
  const authority = m?.[1] ?? "";
  const where =
    "it would be written in plain text to the node's world-readable node.env, its command lines and the stack's state";
  if (authority.includes("@"))
    return `carries credentials (user:password@): ${where}. Give the hub's token as secrets.hfToken; for a private index or mirror, serve it to the nodes' network only (a VPC endpoint, an allow-list, or s3:// read with the instance role) instead of credentials in the URL`;
  const query = url.includes("?") ? url.slice(url.indexOf("?") + 1).split("#")[0]! : "";
  const param = query
    .split("&")
    .map((kv) => kv.split("=")[0]!)
    .find((name) => CREDENTIAL_PARAM.test(name));
  if (param)
    return `carries a credential in its query ("${param}=…"): ${where}. Give the hub's token as secrets.hfToken; for a private index or mirror, serve it to the nodes' network only (a VPC endpoint, an allow-list, or s3:// read with the instance role) instead of a token in the URL`;
  return undefined;
}
