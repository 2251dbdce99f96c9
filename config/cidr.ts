/**
 * "Open to the world" for a set of CIDRs: how much of the internet's address space their union
 * covers, not whether one of them is spelled 0.0.0.0/0. `0.0.0.0/1` + `128.0.0.0/1`, or 256 × /8,
 * open a port to everyone exactly as 0.0.0.0/0 does. Private and special-purpose ranges (RFC 1918,
 * CGNAT, loopback, link-local, IPv6 ULA and link-local; IANA special-purpose registries) do not
 * count: nobody on the internet reaches them. Pure; used by the plan and by the policy pack.
 */

export interface CidrRange {
  readonly family: 4 | 6;
  readonly start: bigint;
  /** Exclusive. */
  readonly end: bigint;
}

const BITS = { 4: 32n, 6: 128n } as const;

/** Any union covering at least this many public IPv4 addresses (a /8's) is open to the world. */
export const WORLD_IPV4_ADDRESSES = 2n ** 24n;
/** IPv6: a /16's worth of public addresses (1/8192 of the global unicast 2000::/3). */
export const WORLD_IPV6_ADDRESSES = 2n ** 112n;
/**
 * SSH is judged by the addresses that can reach it, far below the API's bound: more than a /16's
 * worth of public IPv4 addresses (65,536), or a /48's of IPv6, is refused. A reserved block inside
 * a wide CIDR must not lift it under the world threshold (198.0.0.0/8 holds 198.18.0.0/15 and
 * still opens SSH to 16.6 M addresses).
 */
export const SSH_MAX_IPV4_ADDRESSES = 2n ** 16n;
export const SSH_MAX_IPV6_ADDRESSES = 2n ** 80n;

function parseIpv4(text: string): bigint | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    v = (v << 8n) | BigInt(Number(p));
  }
  return v;
}

function parseIpv6(text: string): bigint | undefined {
  if (!/^[0-9a-fA-F:]+$/.test(text) || (text.match(/::/g) ?? []).length > 1) return undefined;
  const [head, tail] = text.includes("::") ? text.split("::") : [text, undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const missing = 8 - h.length - t.length;
  if (tail === undefined ? missing !== 0 : missing < 1) return undefined;
  const groups = [...h, ...Array<string>(tail === undefined ? 0 : missing).fill("0"), ...t];
  let v = 0n;
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    v = (v << 16n) | BigInt(parseInt(g, 16));
  }
  return v;
}

/** "203.0.113.0/24" or "2001:db8::/32" → its address range; undefined when malformed. */
export function parseCidr(text: string): CidrRange | undefined {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text.trim());
  if (!m) return undefined;
  const family: 4 | 6 = m[1]!.includes(":") ? 6 : 4;
  const addr = family === 4 ? parseIpv4(m[1]!) : parseIpv6(m[1]!);
  const prefix = BigInt(Number(m[2]));
  if (addr === undefined || prefix > BITS[family]) return undefined;
  const size = 1n << (BITS[family] - prefix);
  const start = (addr / size) * size;
  return { family, start, end: start + size };
}

const NOT_PUBLIC: readonly string[] = [
  // IPv4 special-purpose (RFC 6890 and IANA's registry): this network, private, CGNAT, loopback,
  // link-local, private, documentation, multicast and reserved.
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.168.0.0/16",
  "198.18.0.0/15",
  "224.0.0.0/3",
  // IPv6: everything outside global unicast 2000::/3, and the documentation range.
  "::/3",
  "4000::/2",
  "8000::/1",
  "2001:db8::/32",
];
const PRIVATE = NOT_PUBLIC.map((c) => parseCidr(c)!);

function merge(ranges: readonly CidrRange[]): CidrRange[] {
  const sorted = [...ranges].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: CidrRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.start <= last.end) {
      if (r.end > last.end) out[out.length - 1] = { ...last, end: r.end };
    } else out.push(r);
  }
  return out;
}

function size(ranges: readonly CidrRange[]): bigint {
  return ranges.reduce((n, r) => n + (r.end - r.start), 0n);
}

/** Public addresses of one family covered by the union of `ranges` (overlaps counted once). */
function publicCovered(ranges: readonly CidrRange[], family: 4 | 6): bigint {
  const mine = merge(ranges.filter((r) => r.family === family));
  const priv = merge(PRIVATE.filter((r) => r.family === family));
  let n = size(mine);
  for (const a of mine)
    for (const p of priv) {
      const lo = a.start > p.start ? a.start : p.start;
      const hi = a.end < p.end ? a.end : p.end;
      if (hi > lo) n -= hi - lo;
    }
  return n;
}

export interface Exposure {
  /** True when the union reaches a large share of the internet (see the thresholds above). */
  readonly open: boolean;
  /** Share of the public IPv4 space covered, 0–1 (for messages). */
  readonly ipv4Share: number;
  readonly ipv6Share: number;
  /** Public addresses covered (overlaps and private ranges not counted). */
  readonly ipv4Addresses: bigint;
  readonly ipv6Addresses: bigint;
}

const PUBLIC_IPV4 = 2n ** 32n - size(merge(PRIVATE.filter((r) => r.family === 4)));
/** Global unicast 2000::/3 less the documentation /32. */
const PUBLIC_IPV6 = 2n ** 125n - 2n ** 96n;

/** How far a set of CIDRs opens a port; malformed entries are ignored (the schema refuses them). */
export function exposure(cidrs: readonly string[]): Exposure {
  const ranges = cidrs.map(parseCidr).filter((r): r is CidrRange => r !== undefined);
  const v4 = publicCovered(ranges, 4);
  const v6 = publicCovered(ranges, 6);
  return {
    open: v4 >= WORLD_IPV4_ADDRESSES || v6 >= WORLD_IPV6_ADDRESSES,
    ipv4Share: Number((v4 * 1_000_000n) / PUBLIC_IPV4) / 1_000_000,
    ipv6Share: Number((v6 * 1_000_000n) / PUBLIC_IPV6) / 1_000_000,
    ipv4Addresses: v4,
    ipv6Addresses: v6,
  };
}

/** SSH reachable from more public addresses than SSH_MAX_*_ADDRESSES allow. */
export function sshTooOpen(e: Exposure): boolean {
  return e.ipv4Addresses > SSH_MAX_IPV4_ADDRESSES || e.ipv6Addresses > SSH_MAX_IPV6_ADDRESSES;
}

/** "100 % of the public IPv4 space", for messages. */
export function describeExposure(e: Exposure): string {
  const pct = (x: number) =>
    x >= 0.9995 ? "100" : x >= 0.01 ? (x * 100).toFixed(1) : (x * 100).toPrecision(2);
  return e.ipv6Share > e.ipv4Share
    ? `${pct(e.ipv6Share)} % of the public IPv6 space`
    : `${pct(e.ipv4Share)} % of the public IPv4 space`;
}
