/**
 * The security rules every deployment must pass, as @pulumi/policy resource validations. The pack
 * (policy/index.ts) serves them to the engine (`pulumi preview --policy-pack policy`); tests run them
 * against the recorded resources of every shipped stack and against crafted bad resources.
 */
import * as aws from "@pulumi/aws";
import {
  validateResourceOfType,
  type PolicyResource,
  type ResourceValidationPolicy,
  type StackValidationPolicy,
} from "@pulumi/policy";
import { INSTANCE_TYPE_NAMES } from "../catalogs/instances";
import { describeExposure, exposure } from "../config/cidr";

const SSH = 22;

interface Ingress {
  protocol?: string;
  fromPort?: number;
  toPort?: number;
  cidrs: string[];
  tags?: Record<string, string>;
}

function coversPort(r: Ingress, port: number): boolean {
  if (r.protocol === "-1" || r.protocol === "all") return true;
  return (r.fromPort ?? 0) <= port && port <= (r.toPort ?? 65535);
}

/** Open to the world by the share of the internet its CIDRs cover (config/cidr.ts), not by spelling. */
function worldIngress(r: Ingress): boolean {
  return exposure(r.cidrs).open;
}

const INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule";
const SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule";
const SG = "aws:ec2/securityGroup:SecurityGroup";

/** Every ingress rule of the stack with the group it opens, however it is written. */
function stackIngress(resources: readonly PolicyResource[]): (Ingress & { group: string })[] {
  const out: (Ingress & { group: string })[] = [];
  for (const r of resources) {
    const p = r.props;
    if (r.type === INGRESS_RULE)
      out.push({
        group: String(p["securityGroupId"] ?? r.urn),
        protocol: p["ipProtocol"],
        fromPort: p["fromPort"],
        toPort: p["toPort"],
        cidrs: [p["cidrIpv4"], p["cidrIpv6"]].filter((c): c is string => Boolean(c)),
        tags: p["tags"] ?? {},
      });
    else if (r.type === SG_RULE && p["type"] === "ingress")
      out.push({
        group: String(p["securityGroupId"] ?? r.urn),
        protocol: p["protocol"],
        fromPort: p["fromPort"],
        toPort: p["toPort"],
        cidrs: [...(p["cidrBlocks"] ?? []), ...(p["ipv6CidrBlocks"] ?? [])],
      });
    else if (r.type === SG)
      for (const i of (p["ingress"] ?? []) as Record<string, unknown>[])
        out.push({
          group: String(p["id"] ?? r.urn),
          protocol: i["protocol"] as string,
          fromPort: i["fromPort"] as number,
          toPort: i["toPort"] as number,
          cidrs: [
            ...((i["cidrBlocks"] as string[]) ?? []),
            ...((i["ipv6CidrBlocks"] as string[]) ?? []),
          ],
          tags: p["tags"] ?? {},
        });
  }
  return out;
}

/**
 * Rules that are each narrow but together open a port of one group to the world (256 × /8, two
 * /1s): what the per-resource rules cannot see.
 */
const unionPolicy: StackValidationPolicy = {
  name: "ingress-union-not-open-to-the-world",
  description:
    "The ingress rules of a security group, taken together per port, open neither SSH nor an unapproved port to the world.",
  enforcementLevel: "mandatory",
  validateStack: (args, report) => {
    const rules = stackIngress(args.resources);
    const groups = new Map<string, typeof rules>();
    for (const r of rules) groups.set(r.group, [...(groups.get(r.group) ?? []), r]);
    for (const [group, rs] of groups) {
      const ports = new Set(rs.map((r) => (r.protocol === "-1" ? SSH : (r.fromPort ?? 0))));
      for (const port of [...ports].sort((a, b) => a - b)) {
        const covering = rs.filter((r) => coversPort(r, port));
        const e = exposure(covering.flatMap((r) => r.cidrs));
        // A rule open on its own is the per-resource policies' to report.
        if (!e.open || covering.some(worldIngress)) continue;
        const list = covering.flatMap((r) => r.cidrs).join(", ");
        if (port === SSH)
          report(`security group ${group}: port 22 is open to ${describeExposure(e)} by ${list}.`);
        else if (covering.some((r) => r.tags?.["PublicApi"] !== "approved"))
          report(
            `security group ${group}: port ${port} is open to ${describeExposure(e)} by ${list} without approval.`,
          );
      }
    }
  },
};

/** Ingress rules of the three ways AWS lets you write them. */
const ingressValidations = (check: (r: Ingress, report: (m: string) => void) => void) => [
  validateResourceOfType(aws.vpc.SecurityGroupIngressRule, (rule, _args, report) => {
    check(
      {
        protocol: rule.ipProtocol,
        fromPort: rule.fromPort,
        toPort: rule.toPort,
        cidrs: [rule.cidrIpv4, rule.cidrIpv6].filter((c): c is string => Boolean(c)),
        tags: rule.tags ?? {},
      },
      report,
    );
  }),
  validateResourceOfType(aws.ec2.SecurityGroupRule, (rule, _args, report) => {
    if (rule.type !== "ingress") return;
    check(
      {
        protocol: rule.protocol,
        fromPort: rule.fromPort,
        toPort: rule.toPort,
        cidrs: [...(rule.cidrBlocks ?? []), ...(rule.ipv6CidrBlocks ?? [])],
      },
      report,
    );
  }),
  validateResourceOfType(aws.ec2.SecurityGroup, (sg, _args, report) => {
    for (const r of sg.ingress ?? [])
      check(
        {
          protocol: r.protocol,
          fromPort: r.fromPort,
          toPort: r.toPort,
          cidrs: [...(r.cidrBlocks ?? []), ...(r.ipv6CidrBlocks ?? [])],
          tags: sg.tags ?? {},
        },
        report,
      );
  }),
];

const SECRET_PATTERNS: readonly [RegExp, string][] = [
  [/hf_[A-Za-z0-9]{20,}/, "a Hugging Face token"],
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----/, "a private key"],
  [/\b(VLLM_API_KEY|HF_TOKEN|HUGGING_FACE_HUB_TOKEN)=\S+/, "a secret environment variable"],
  [/--api-key[ =]\S+/, "vLLM's --api-key"],
  [/AKIA[0-9A-Z]{16}/, "an AWS access key"],
];

function secretIn(userData: string | undefined): string | undefined {
  if (!userData) return undefined;
  const texts = [userData];
  if (/^[A-Za-z0-9+/=\s]+$/.test(userData))
    texts.push(Buffer.from(userData, "base64").toString("utf8"));
  for (const t of texts) for (const [re, what] of SECRET_PATTERNS) if (re.test(t)) return what;
  return undefined;
}

export const REQUIRED_TAGS = ["Project", "Stack"] as const;
export const REQUIRED_NODE_TAGS = ["Project", "Stack", "Role", "Model"] as const;

function missingTags(
  tags: Record<string, string> | undefined,
  required: readonly string[],
): string[] {
  return required.filter((t) => !tags?.[t]);
}

export const policies: (ResourceValidationPolicy | StackValidationPolicy)[] = [
  {
    name: "ssh-not-open-to-the-world",
    description:
      "No security group rule opens SSH (22) to the world: 0.0.0.0/0, ::/0, or any CIDR reaching a /8's worth of public addresses.",
    enforcementLevel: "mandatory",
    validateResource: ingressValidations((r, report) => {
      if (worldIngress(r) && coversPort(r, SSH))
        report(
          "SSH is open to the whole internet; allow your own CIDR, or use SSM Session Manager.",
        );
    }),
  },
  {
    name: "api-not-open-to-the-world",
    description:
      "Nothing but an approved API rule (network.allowPublicApi with an API key) is open to the world.",
    enforcementLevel: "mandatory",
    validateResource: ingressValidations((r, report) => {
      if (!worldIngress(r) || coversPort(r, SSH)) return;
      if (r.tags?.["PublicApi"] !== "approved")
        report(
          `port ${r.fromPort}-${r.toPort} is open to the whole internet without approval; set network.allowPublicApi: true with secrets.apiKey, or allow only your CIDRs.`,
        );
    }),
  },
  {
    name: "imdsv2-required",
    description: "Instances require IMDSv2 session tokens (metadataOptions.httpTokens = required).",
    enforcementLevel: "mandatory",
    validateResource: [
      validateResourceOfType(aws.ec2.Instance, (i, _a, report) => {
        if (i.metadataOptions?.httpTokens !== "required")
          report('IMDSv1 is allowed: set metadataOptions.httpTokens to "required".');
      }),
      validateResourceOfType(aws.ec2.LaunchTemplate, (t, _a, report) => {
        if (t.metadataOptions?.httpTokens !== "required")
          report('IMDSv1 is allowed: set metadataOptions.httpTokens to "required".');
      }),
    ],
  },
  {
    name: "volumes-encrypted",
    description: "Every EBS volume is encrypted.",
    enforcementLevel: "mandatory",
    validateResource: [
      validateResourceOfType(aws.ec2.Instance, (i, _a, report) => {
        if (i.rootBlockDevice?.encrypted !== true)
          report("the root volume is not encrypted: set rootBlockDevice.encrypted.");
        for (const d of i.ebsBlockDevices ?? [])
          if (d.encrypted !== true) report(`volume ${d.deviceName} is not encrypted.`);
      }),
      validateResourceOfType(aws.ebs.Volume, (v, _a, report) => {
        if (v.encrypted !== true) report("the volume is not encrypted.");
      }),
    ],
  },
  {
    name: "no-secrets-in-user-data",
    description:
      "User data carries no token, key or password (it is readable from the instance metadata and the console).",
    enforcementLevel: "mandatory",
    validateResource: [
      validateResourceOfType(aws.ec2.Instance, (i, _a, report) => {
        const what = secretIn(i.userData) ?? secretIn(i.userDataBase64);
        if (what)
          report(
            `user data contains ${what}; deliver secrets through SSM Parameter Store or a root-only file over SSH.`,
          );
      }),
      validateResourceOfType(aws.ec2.LaunchTemplate, (t, _a, report) => {
        const what = secretIn(t.userData);
        if (what)
          report(
            `user data contains ${what}; deliver secrets through SSM Parameter Store or a root-only file over SSH.`,
          );
      }),
    ],
  },
  {
    name: "instance-types-from-catalog",
    description: "GPU instances are of a type the planner knows (catalogs/instances.ts).",
    enforcementLevel: "mandatory",
    validateResource: validateResourceOfType(aws.ec2.Instance, (i, _a, report) => {
      if (!(INSTANCE_TYPE_NAMES as string[]).includes(String(i.instanceType)))
        report(
          `instance type ${String(i.instanceType)} is not in the catalog; the plan's memory and cost numbers would be wrong.`,
        );
    }),
  },
  {
    name: "tags-present",
    description:
      "Instances carry Project, Stack, Role and Model tags; networks, groups and balancers Project and Stack.",
    enforcementLevel: "mandatory",
    validateResource: [
      validateResourceOfType(aws.ec2.Instance, (i, _a, report) => {
        const missing = missingTags(i.tags, REQUIRED_NODE_TAGS);
        if (missing.length) report(`missing tags: ${missing.join(", ")}`);
      }),
      ...[
        aws.ec2.SecurityGroup,
        aws.ec2.Vpc,
        aws.ec2.Subnet,
        aws.ec2.PlacementGroup,
        aws.lb.LoadBalancer,
        aws.lb.TargetGroup,
      ].map((cls) =>
        validateResourceOfType(cls as typeof aws.ec2.Vpc, (r, _a, report) => {
          const missing = missingTags(r.tags, REQUIRED_TAGS);
          if (missing.length) report(`missing tags: ${missing.join(", ")}`);
        }),
      ),
    ],
  },
  unionPolicy,
];
