/**
 * The nodes' instance role: only what a node needs. Session Manager (shell and port forwarding
 * without open SSH): the five actions of AWS's own minimal Session Manager policy
 * (AWSCloud9SSMInstanceProfile; "Create a custom IAM instance profile for Session Manager"), not
 * AmazonSSMManagedInstanceCore, which also grants ssm:GetParameter(s) on every parameter of the
 * account. Read access to exactly the S3 weights-mirror prefix, when the stack names one. No SSM
 * parameter: secrets ("ssm:/…") are read on the operator's machine by `pulumi up` (program.ts
 * resolveSecrets) and reach the node as its root-only secrets file; nothing on the node reads SSM
 * (provisioning/scripts). Every ARN in the stack's partition.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

export interface NodeRoleArgs {
  /** S3 weights mirror ("s3://bucket/prefix") the node may read, and nothing else of S3. Default: none. */
  readonly weightsMirror?: string;
  /** Tags of the role and profile. Required (the deployment's). */
  readonly tags: Readonly<Record<string, string>>;
}

export class NodeRole extends pulumi.ComponentResource {
  readonly instanceProfileName: pulumi.Output<string>;
  readonly roleArn: pulumi.Output<string>;

  constructor(name: string, args: NodeRoleArgs, opts?: pulumi.ComponentResourceOptions) {
    super("qwen-vl-deploy:aws:NodeRole", name, {}, opts);
    const parent = { parent: this };
    const role = new aws.iam.Role(
      `${name}-role`,
      {
        description: "qwen-vl-deploy GPU node",
        assumeRolePolicy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            {
              Effect: "Allow",
              Principal: { Service: "ec2.amazonaws.com" },
              Action: "sts:AssumeRole",
            },
          ],
        }),
        tags: args.tags,
      },
      parent,
    );
    let policies: RolePolicySpec[];
    try {
      policies = nodeRolePolicies(args);
    } catch (e) {
      // A weights mirror that is not an S3 URL: said against this component, not as a stack trace.
      throw new pulumi.ResourceError((e as Error).message, this);
    }
    // The partition is looked up only when a policy names it in its ARNs.
    const partition = policies.some((p) => p.needs === "partition")
      ? aws.getPartitionOutput({}, parent).partition
      : pulumi.output("aws");
    for (const p of policies)
      new aws.iam.RolePolicy(
        `${name}-${p.name}`,
        {
          role: role.id,
          policy: partition.apply((partition) => JSON.stringify(p.document({ partition }))),
        },
        parent,
      );
    const profile = new aws.iam.InstanceProfile(
      `${name}-profile`,
      { role: role.name, tags: args.tags },
      parent,
    );
    this.instanceProfileName = profile.name;
    this.roleArn = role.arn;
    this.registerOutputs({ instanceProfileName: this.instanceProfileName, roleArn: this.roleArn });
  }
}

/** What the SSM agent needs for Session Manager, and nothing else (no Run Command, no parameters). */
export const SESSION_MANAGER_POLICY = {
  Version: "2012-10-17",
  Statement: [
    {
      Effect: "Allow",
      Action: [
        "ssm:UpdateInstanceInformation",
        "ssmmessages:CreateControlChannel",
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel",
      ],
      Resource: "*",
    },
  ],
} as const;

/** Where a policy's ARNs point: the stack's partition ("aws", "aws-us-gov", "aws-cn"). */
export interface ArnContext {
  readonly partition: string;
}

export interface RolePolicySpec {
  /** The policy's name after the component's. */
  readonly name: string;
  /** What its ARNs need looked up. */
  readonly needs: "nothing" | "partition";
  readonly document: (at: ArnContext) => object;
}

/**
 * The role's inline policies: Session Manager always; GetObject under exactly the S3 weights
 * mirror's prefix and ListBucket on that prefix only. Pure.
 */
export function nodeRolePolicies(args: Omit<NodeRoleArgs, "tags">): RolePolicySpec[] {
  const statement = (s: object) => ({ Version: "2012-10-17", Statement: [s].flat() });
  const policies: RolePolicySpec[] = [
    { name: "session-manager", needs: "nothing", document: () => SESSION_MANAGER_POLICY },
  ];
  if (args.weightsMirror) {
    const { bucket, prefix } = parseS3(args.weightsMirror);
    policies.push({
      name: "weights",
      needs: "partition",
      document: ({ partition }) =>
        statement([
          {
            Effect: "Allow",
            Action: ["s3:GetObject"],
            Resource: [`arn:${partition}:s3:::${bucket}/${prefix ? `${prefix}/` : ""}*`],
          },
          {
            Effect: "Allow",
            Action: ["s3:ListBucket"],
            Resource: [`arn:${partition}:s3:::${bucket}`],
            ...(prefix ? { Condition: { StringLike: { "s3:prefix": [`${prefix}/*`] } } } : {}),
          },
        ]),
    });
  }
  return policies;
}

export function parseS3(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*?)\/?$/.exec(url);
  if (!m) throw new Error(`not an S3 URL: ${url}`);
  return { bucket: m[1]!, prefix: m[2]! };
}
