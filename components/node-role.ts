/**
 * The nodes' instance role: only what a node needs. Session Manager (shell and port forwarding
 * without open SSH): the five actions of AWS's own minimal Session Manager policy
 * (AWSCloud9SSMInstanceProfile; "Create a custom IAM instance profile for Session Manager"), not
 * AmazonSSMManagedInstanceCore, which also grants ssm:GetParameter(s) on every parameter of the
 * account. Read access to exactly the SSM parameters its secrets live in, and to exactly the S3
 * weights-mirror prefix, when the stack names them. Every ARN in the stack's partition.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

export interface NodeRoleArgs {
  /** SSM parameter paths (with leading "/") the node reads at provisioning, e.g. the HF token. Default: none. */
  readonly ssmParameters: readonly string[];
  /** S3 weights mirror ("s3://bucket/prefix") the node may read, and nothing else of S3. Default: none. */
  readonly weightsMirror?: string;
  /** The stack's region: the parameters' ARNs are in it. Required. */
  readonly region: string;
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
    new aws.iam.RolePolicy(
      `${name}-session-manager`,
      { role: role.id, policy: JSON.stringify(SESSION_MANAGER_POLICY) },
      parent,
    );
    if (args.ssmParameters.length > 0) {
      const identity = aws.getCallerIdentityOutput({}, parent);
      const partition = aws.getPartitionOutput({}, parent);
      new aws.iam.RolePolicy(
        `${name}-secrets`,
        {
          role: role.id,
          policy: pulumi.all([identity.accountId, partition.partition]).apply(([account, p]) =>
            JSON.stringify({
              Version: "2012-10-17",
              Statement: [
                {
                  Effect: "Allow",
                  Action: ["ssm:GetParameter"],
                  Resource: args.ssmParameters.map(
                    (path) => `arn:${p}:ssm:${args.region}:${account}:parameter${path}`,
                  ),
                },
              ],
            }),
          ),
        },
        parent,
      );
    }
    if (args.weightsMirror) {
      const { bucket, prefix } = parseS3(args.weightsMirror);
      const partition = aws.getPartitionOutput({}, parent);
      new aws.iam.RolePolicy(
        `${name}-weights`,
        {
          role: role.id,
          policy: partition.partition.apply((p) =>
            JSON.stringify({
              Version: "2012-10-17",
              Statement: [
                {
                  Effect: "Allow",
                  Action: ["s3:GetObject"],
                  Resource: [`arn:${p}:s3:::${bucket}/${prefix ? `${prefix}/` : ""}*`],
                },
                {
                  Effect: "Allow",
                  Action: ["s3:ListBucket"],
                  Resource: [`arn:${p}:s3:::${bucket}`],
                  ...(prefix
                    ? { Condition: { StringLike: { "s3:prefix": [`${prefix}/*`] } } }
                    : {}),
                },
              ],
            }),
          ),
        },
        parent,
      );
    }
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

export function parseS3(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*?)\/?$/.exec(url);
  if (!m) throw new Error(`not an S3 URL: ${url}`);
  return { bucket: m[1]!, prefix: m[2]! };
}
