/**
 * One GPU instance: IMDSv2 only, an encrypted gp3 root volume deleted with the instance, the node
 * role, optional spot (one-time) and an optional EFA primary interface. The AMI is read once: a new
 * "latest" image does not replace a running node (`ignoreChanges: ["ami"]`).
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

export interface GpuNodeArgs {
  /** The image (AMI id); a later change of it is ignored (the node is not replaced). Required. */
  readonly ami: pulumi.Input<string>;
  /** EC2 instance type (catalogs/instances.ts). Required. */
  readonly instanceType: string;
  /** Subnet in the zone that offers the type (Network.subnetId). Required. */
  readonly subnetId: pulumi.Input<string>;
  /** Security groups of the node (Network.nodeSecurityGroupId). Required. */
  readonly securityGroupIds: pulumi.Input<string>[];
  /** Instance profile (NodeRole.instanceProfileName). Required. */
  readonly instanceProfileName: pulumi.Input<string>;
  /** Key pair for SSH. Default: none (SSM Session Manager only). */
  readonly keyName?: pulumi.Input<string>;
  /** Root volume size in GiB (gp3, encrypted, deleted with the instance). Required (rootDisk). */
  readonly rootVolumeGiB: pulumi.Input<number>;
  /** gp3 throughput of the root volume in MiB/s. Default: gp3's baseline (125). */
  readonly rootThroughputMiBs?: number;
  /** gp3 IOPS of the root volume. Default: gp3's baseline (3000). */
  readonly rootIops?: number;
  /** Cluster placement group (multi-node). Default: none. */
  readonly placementGroup?: pulumi.Input<string>;
  /** Spot with a one-time request, terminated on interruption. Default: on-demand. */
  readonly spot?: {
    /** Highest price per hour. Default: the on-demand price (EC2's). */
    readonly maxPriceUsdPerHour?: number;
  };
  /**
   * EFA interfaces to create at launch (the type's count, 1 to 32), through a launch template: the
   * primary an EFA (EFA with ENA) on network card 0, an EFA-only interface on every further card.
   * Default: 0 (no EFA).
   */
  readonly efaInterfaces?: number;
  /** Capacity reservation to launch into ("cr-…"). Default: none (open capacity). */
  readonly capacityReservationId?: string;
  /** The reservation is an EC2 Capacity Block for ML. Default: false. */
  readonly capacityBlock?: boolean;
  /** cloud-init user data (public content only: the policy pack refuses secrets there). Default: none. */
  readonly userData?: pulumi.Input<string>;
  /** Tags of the instance, its volume and interfaces. Required (the deployment's). */
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
    const efaCards = args.efaInterfaces ?? 0;
    if (efaCards > 0) {
      // AWS: "an EFA per network card"; with several interfaces EC2 cannot auto-assign a public
      // address (an Elastic IP follows below), and the instance may not name a subnet or groups.
      const template = new aws.ec2.LaunchTemplate(
        `${name}-efa`,
        {
          networkInterfaces: efaInterfaceSpecs(efaCards, args.subnetId, args.securityGroupIds),
          tags: args.tags,
        },
        parent,
      );
      network = {
        launchTemplate: { id: template.id, version: template.latestVersion.apply(String) },
      };
    }
    const instance = new aws.ec2.Instance(`${name}-instance`, instanceArgs(name, args, network), {
      parent: this,
      ignoreChanges: ["ami"],
    });
    this.instanceId = instance.id;
    // On the primary interface, not the instance: AssociateAddress takes an instance id only when
    // "the instance [has] exactly one attached network interface" (EC2 API Reference,
    // AssociateAddress, InstanceId), and a p5.48xlarge here has 32.
    this.publicIp = needsElasticIp(args)
      ? new aws.ec2.Eip(
          `${name}-ip`,
          { domain: "vpc", networkInterface: instance.primaryNetworkInterfaceId, tags: args.tags },
          parent,
        ).publicIp
      : instance.publicIp;
    this.privateIp = instance.privateIp;
    this.registerOutputs({
      instanceId: this.instanceId,
      publicIp: this.publicIp,
      privateIp: this.privateIp,
    });
  }
}

/**
 * The launch template's interfaces for `cards` EFA network cards: card 0 device 0 an EFA (EFA with
 * ENA: it carries the node's IP traffic too), every further card an EFA-only interface at device 0
 * (AWS, "Maximize network bandwidth on accelerated instances", efa-acc-inst-types.html). Only a
 * single interface may take an automatic public address (RunInstances,
 * InstanceNetworkInterfaceSpecification).
 */
export function efaInterfaceSpecs(
  cards: number,
  subnetId: pulumi.Input<string>,
  securityGroupIds: pulumi.Input<string>[],
): aws.types.input.ec2.LaunchTemplateNetworkInterface[] {
  return Array.from({ length: cards }, (_, card) => ({
    networkCardIndex: card,
    deviceIndex: 0,
    interfaceType: card === 0 ? "efa" : "efa-only",
    subnetId,
    securityGroups: securityGroupIds,
    deleteOnTermination: "true",
    ...(card === 0 && cards === 1 ? { associatePublicIpAddress: "true" } : {}),
  }));
}

/**
 * The instance's inputs: IMDSv2 only (hop limit 2, for containers on the node), an encrypted gp3
 * root volume deleted with it, the optional key, user data and placement group, and its market: a
 * Capacity Block (its own market type), else one-time spot terminated on interruption, else
 * on-demand; a capacity reservation when named. `network`: the subnet and groups, or the EFA launch
 * template. Pure.
 */
export function instanceArgs(
  name: string,
  args: GpuNodeArgs,
  network: Pick<aws.ec2.InstanceArgs, "subnetId" | "vpcSecurityGroupIds" | "launchTemplate">,
): aws.ec2.InstanceArgs {
  const spot = args.spot
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
    : {};
  return {
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
      ...(args.rootThroughputMiBs ? { throughput: args.rootThroughputMiBs } : {}),
      ...(args.rootIops ? { iops: args.rootIops } : {}),
      volumeType: "gp3",
      encrypted: true,
      deleteOnTermination: true,
      tags: args.tags,
    },
    ...(args.capacityReservationId
      ? {
          capacityReservationSpecification: {
            capacityReservationTarget: { capacityReservationId: args.capacityReservationId },
          },
        }
      : {}),
    ...(args.capacityBlock ? { instanceMarketOptions: { marketType: "capacity-block" } } : spot),
    tags: { ...args.tags, Name: name },
  };
}

/**
 * With more than one EFA interface EC2 cannot give the instance an automatic public address: it
 * gets an Elastic IP (RunInstances, InstanceNetworkInterfaceSpecification). Pure.
 */
export function needsElasticIp(args: Pick<GpuNodeArgs, "efaInterfaces">): boolean {
  return (args.efaInterfaces ?? 0) > 1;
}
