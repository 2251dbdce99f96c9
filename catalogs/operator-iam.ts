/**
 * What the operator's AWS identity (the one `pulumi preview`/`up`/`destroy` run as) must be
 * allowed, per thing the program registers or looks up: one row per Pulumi resource type or
 * invoke token that the AWS stacks use (test/aws.test.ts holds every one registered under mocks
 * to this table; README "Deploying for real" mirrors it). Actions are those of the EC2, IAM, ELB,
 * SSM and Service Quotas APIs each create, read, update and delete calls (the AWS Service
 * Authorization Reference, per service; the Terraform AWS provider that @pulumi/aws wraps reads
 * tags and attributes back after each create). Node-side access is the node role's
 * (components/node-role.ts), not this.
 */
export const OPERATOR_IAM: Readonly<Record<string, readonly string[]>> = {
  // Resources.
  "aws:ec2/instance:Instance": [
    "ec2:RunInstances",
    "ec2:DescribeInstances",
    "ec2:DescribeInstanceAttribute",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeInstanceCreditSpecifications",
    "ec2:DescribeVolumes",
    "ec2:DescribeTags",
    "ec2:CreateTags",
    "ec2:ModifyInstanceAttribute",
    "ec2:TerminateInstances",
    // The node's instance profile hands the node role to EC2.
    "iam:PassRole",
  ],
  "aws:ec2/launchTemplate:LaunchTemplate": [
    "ec2:CreateLaunchTemplate",
    "ec2:CreateLaunchTemplateVersion",
    "ec2:ModifyLaunchTemplate",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:DeleteLaunchTemplate",
  ],
  "aws:ec2/eip:Eip": [
    "ec2:AllocateAddress",
    "ec2:AssociateAddress",
    "ec2:DescribeAddresses",
    "ec2:DisassociateAddress",
    "ec2:ReleaseAddress",
  ],
  "aws:ec2/keyPair:KeyPair": ["ec2:ImportKeyPair", "ec2:DescribeKeyPairs", "ec2:DeleteKeyPair"],
  "aws:ec2/placementGroup:PlacementGroup": [
    "ec2:CreatePlacementGroup",
    "ec2:DescribePlacementGroups",
    "ec2:DeletePlacementGroup",
  ],
  "aws:ec2/securityGroup:SecurityGroup": [
    "ec2:CreateSecurityGroup",
    "ec2:DescribeSecurityGroups",
    // The provider removes EC2's default allow-all egress rule from a new group.
    "ec2:RevokeSecurityGroupEgress",
    "ec2:DeleteSecurityGroup",
  ],
  "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": [
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:DescribeSecurityGroupRules",
    "ec2:ModifySecurityGroupRules",
    "ec2:RevokeSecurityGroupIngress",
  ],
  "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": [
    "ec2:AuthorizeSecurityGroupEgress",
    "ec2:DescribeSecurityGroupRules",
    "ec2:ModifySecurityGroupRules",
    "ec2:RevokeSecurityGroupEgress",
  ],
  "aws:ec2/vpc:Vpc": [
    "ec2:CreateVpc",
    "ec2:DescribeVpcs",
    "ec2:DescribeVpcAttribute",
    "ec2:ModifyVpcAttribute",
    // The new VPC's default network ACL, route table and security group are read back.
    "ec2:DescribeNetworkAcls",
    "ec2:DescribeRouteTables",
    "ec2:DeleteVpc",
  ],
  "aws:ec2/internetGateway:InternetGateway": [
    "ec2:CreateInternetGateway",
    "ec2:AttachInternetGateway",
    "ec2:DescribeInternetGateways",
    "ec2:DetachInternetGateway",
    "ec2:DeleteInternetGateway",
  ],
  "aws:ec2/routeTable:RouteTable": [
    "ec2:CreateRouteTable",
    "ec2:CreateRoute",
    "ec2:DescribeRouteTables",
    "ec2:DeleteRoute",
    "ec2:DeleteRouteTable",
  ],
  "aws:ec2/routeTableAssociation:RouteTableAssociation": [
    "ec2:AssociateRouteTable",
    "ec2:DisassociateRouteTable",
  ],
  "aws:ec2/subnet:Subnet": [
    "ec2:CreateSubnet",
    "ec2:DescribeSubnets",
    "ec2:ModifySubnetAttribute",
    "ec2:DeleteSubnet",
  ],
  // Read, never created: an On-Demand Capacity Reservation the stack launches into.
  "aws:ec2/capacityReservation:CapacityReservation": ["ec2:DescribeCapacityReservations"],
  "aws:iam/role:Role": [
    "iam:CreateRole",
    "iam:GetRole",
    "iam:TagRole",
    "iam:ListRolePolicies",
    "iam:ListAttachedRolePolicies",
    "iam:ListInstanceProfilesForRole",
    "iam:DeleteRole",
  ],
  "aws:iam/rolePolicy:RolePolicy": [
    "iam:PutRolePolicy",
    "iam:GetRolePolicy",
    "iam:DeleteRolePolicy",
  ],
  "aws:iam/instanceProfile:InstanceProfile": [
    "iam:CreateInstanceProfile",
    "iam:TagInstanceProfile",
    "iam:AddRoleToInstanceProfile",
    "iam:GetInstanceProfile",
    "iam:RemoveRoleFromInstanceProfile",
    "iam:DeleteInstanceProfile",
  ],
  "aws:lb/loadBalancer:LoadBalancer": [
    "elasticloadbalancing:CreateLoadBalancer",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeLoadBalancerAttributes",
    "elasticloadbalancing:ModifyLoadBalancerAttributes",
    "elasticloadbalancing:AddTags",
    "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:DeleteLoadBalancer",
  ],
  "aws:lb/targetGroup:TargetGroup": [
    "elasticloadbalancing:CreateTargetGroup",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetGroupAttributes",
    "elasticloadbalancing:ModifyTargetGroupAttributes",
    "elasticloadbalancing:DeleteTargetGroup",
  ],
  "aws:lb/targetGroupAttachment:TargetGroupAttachment": [
    "elasticloadbalancing:RegisterTargets",
    "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:DeregisterTargets",
  ],
  "aws:lb/listener:Listener": [
    "elasticloadbalancing:CreateListener",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:ModifyListener",
    "elasticloadbalancing:DeleteListener",
  ],
  // The nodes' SSH host keys, read from their console output on this machine (provisioning/remote.ts).
  "pulumi-nodejs:dynamic/qwen-vl-deploy:ConsoleHostKey": ["ec2:GetConsoleOutput"],
  // Made on this machine, no AWS call.
  "pulumi-nodejs:dynamic/qwen-vl-deploy:DeployKey": [],
  "pulumi:providers:aws": [],
  // Lookups (invokes).
  // The AMI's public parameter, and "ssm:" secrets (a SecureString under a customer KMS key also
  // needs kms:Decrypt on that key).
  "aws:ssm/getParameter:getParameter": ["ssm:GetParameter"],
  "aws:ec2/getAmi:getAmi": ["ec2:DescribeImages"],
  "aws:ec2/getVpcs:getVpcs": ["ec2:DescribeVpcs"],
  "aws:ec2/getSubnets:getSubnets": ["ec2:DescribeSubnets"],
  "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings": [
    "ec2:DescribeInstanceTypeOfferings",
  ],
  "aws:index/getAvailabilityZones:getAvailabilityZones": ["ec2:DescribeAvailabilityZones"],
  "aws:ec2/getCapacityBlockReservation:getCapacityBlockReservation": [
    "ec2:DescribeCapacityReservations",
  ],
  // The provider's data source reads the default first, and lists them for a lookup by name
  // (terraform-provider-aws, servicequotas service_quota_data_source.go).
  "aws:servicequotas/getServiceQuota:getServiceQuota": [
    "servicequotas:GetServiceQuota",
    "servicequotas:GetAWSDefaultServiceQuota",
    "servicequotas:ListAWSDefaultServiceQuotas",
  ],
  // Needs no permission: the partition is the provider's own.
  "aws:index/getPartition:getPartition": [],
};

/** Every action the operator needs for `types` (resource types and invoke tokens), sorted. */
export function operatorActions(types: Iterable<string>): string[] {
  const actions = new Set<string>();
  for (const t of types) {
    const row = OPERATOR_IAM[t];
    if (!row) throw new Error(`${t} is not in catalogs/operator-iam.ts: add what it needs there`);
    for (const a of row) actions.add(a);
  }
  return [...actions].sort();
}
