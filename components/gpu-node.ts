/**
 * One GPU instance: IMDSv2 only, an encrypted gp3 root volume deleted with the instance, the node
 * role, optional spot (one-time) and an optional EFA primary interface. The AMI is read once: a new
 * "latest" image does not replace a running node (`ignoreChanges: ["ami"]`).
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

export interface GpuNodeArgs {
  readonly ami: pulumi.Input<string>;
  readonly instanceType: string;
  readonly subnetId: pulumi.Input<string>;
  readonly securityGroupIds: pulumi.Input<string>[];
  readonly instanceProfileName: pulumi.Input<string>;
  /** Key pair for SSH. Default: none (SSM Session Manager only). */
  readonly keyName?: pulumi.Input<string>;
  readonly rootVolumeGiB: number;
  /** Cluster placement group (multi-node). Default: none. */
  readonly placementGroup?: pulumi.Input<string>;
  /** Spot with a one-time request, terminated on interruption. Default: on-demand. */
  readonly spot?: { readonly maxPriceUsdPerHour?: number };
  /** Make the primary interface an EFA (instance type must support it). Default: false. */
  readonly efa?: boolean;
  /** cloud-init user data (public content only: the policy pack refuses secrets there). Default: none. */
  readonly userData?: pulumi.Input<string>;
  readonly tags: Readonly<Record<string, string>>;
}

export class GpuNode extends pulumi.ComponentResource {
  readonly instanceId: pulumi.Output<string>;
  readonly publicIp: pulumi.Output<string>;
  readonly privateIp: pulumi.Output<string>;

  constructor(name: string, args: GpuNodeArgs, opts?: pulumi.ComponentResourceOptions) {
    super("qwen-vl-deploy:aws:GpuNode", name, {}, opts);
    const parent = { parent: this };
    let network: Partial<aws.ec2.InstanceArgs> = {
      subnetId: args.subnetId,
      vpcSecurityGroupIds: args.securityGroupIds,
    };
    if (args.efa) {
      const efa = new aws.ec2.NetworkInterface(
        `${name}-efa`,
        {
          subnetId: args.subnetId,
          securityGroups: args.securityGroupIds,
          interfaceType: "efa",
          tags: args.tags,
        },
        parent,
      );
      network = { primaryNetworkInterface: { networkInterfaceId: efa.id } };
    }
    const instance = new aws.ec2.Instance(
      `${name}-instance`,
      {
        ami: args.ami,
        instanceType: args.instanceType,
        ...network,
        iamInstanceProfile: args.instanceProfileName,
        ...(args.keyName ? { keyName: args.keyName } : {}),
        ...(args.userData ? { userData: args.userData } : {}),
        ...(args.placementGroup ? { placementGroup: args.placementGroup } : {}),
        metadataOptions: {
          httpTokens: "required",
          httpEndpoint: "enabled",
          httpPutResponseHopLimit: 2,
        },
        rootBlockDevice: {
          volumeSize: args.rootVolumeGiB,
          volumeType: "gp3",
          encrypted: true,
          deleteOnTermination: true,
          tags: args.tags,
        },
        ...(args.spot
          ? {
              instanceMarketOptions: {
                marketType: "spot",
                spotOptions: {
                  spotInstanceType: "one-time",
                  instanceInterruptionBehavior: "terminate",
                  ...(args.spot.maxPriceUsdPerHour
                    ? { maxPrice: String(args.spot.maxPriceUsdPerHour) }
                    : {}),
                },
              },
            }
          : {}),
        tags: { ...args.tags, Name: name },
      },
      { parent: this, ignoreChanges: ["ami"] },
    );
    this.instanceId = instance.id;
    this.publicIp = instance.publicIp;
    this.privateIp = instance.privateIp;
    this.registerOutputs({
      instanceId: this.instanceId,
      publicIp: this.publicIp,
      privateIp: this.privateIp,
    });
  }
}
