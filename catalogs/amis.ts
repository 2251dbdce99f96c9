/**
 * Machine images by name: the SSM public parameter that points at the current image, and the login
 * user. Sources: AWS DLAMI release notes (SSM parameter for "Deep Learning Base OSS Nvidia Driver GPU
 * AMI (Ubuntu 22.04)"); AWS DLAMI guide "Finding the ID of a DLAMI" (the parameter is
 * /aws/service/deeplearning/ami/<arch>/<the AMI's name without "deep", "learning" and "ami">/latest/ami-id,
 * which gives the Ubuntu 24.04 one's) and that AMI's release notes (python_location
 * /usr/bin/python3.12, NVIDIA driver 595 with CUDA 13.2 in the 2026 releases); Canonical "Find Ubuntu
 * images on AWS" (SSM parameters); Debian cloud team (SSM parameters under /aws/service/debian);
 * ../shared/reference/aws-nvidia-pulumi-facts.md §2.
 * A "latest" pointer moves: nodes ignore AMI changes once created (see components/gpu-node.ts).
 */
export interface AmiSource {
  readonly ssmParameter: string;
  readonly user: string;
  /** The image already carries the NVIDIA driver, CUDA, EFA and aws-ofi-nccl. */
  readonly nvidiaPreinstalled: boolean;
  readonly os: "ubuntu-22.04" | "ubuntu-24.04" | "debian-12";
  /** The system python3 the Python environment is built on (Ubuntu and Debian package archives). */
  readonly python: string;
  /**
   * The image runs the SSM agent (Session Manager: the stacks' way in without SSH). AWS's list of
   * AMIs with SSM Agent preinstalled names Ubuntu Server (a snap) and not Debian, whose cloud images
   * ship without it ("Manually installing SSM Agent on Debian Server instances").
   */
  readonly ssmAgent: boolean;
}

/** The images by name, in the order the plan offers them (target.ami). */
export const AMI_NAMES = [
  "dlami-ubuntu-22.04",
  "dlami-ubuntu-24.04",
  "ubuntu-22.04",
  "ubuntu-24.04",
  "debian-12",
] as const;
export type AmiName = (typeof AMI_NAMES)[number];

export const AMIS: Readonly<Record<AmiName, AmiSource>> = {
  "dlami-ubuntu-22.04": {
    ssmParameter:
      "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id",
    user: "ubuntu",
    nvidiaPreinstalled: true,
    os: "ubuntu-22.04",
    python: "3.10",
    ssmAgent: true,
  },
  // The driver ships with the image, and its Python 3.12 meets vLLM ≥ 0.32's Requires-Python ≥ 3.11.
  "dlami-ubuntu-24.04": {
    ssmParameter:
      "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-24.04/latest/ami-id",
    user: "ubuntu",
    nvidiaPreinstalled: true,
    os: "ubuntu-24.04",
    python: "3.12",
    ssmAgent: true,
  },
  "ubuntu-22.04": {
    ssmParameter:
      "/aws/service/canonical/ubuntu/server/22.04/stable/current/amd64/hvm/ebs-gp2/ami-id",
    user: "ubuntu",
    nvidiaPreinstalled: false,
    os: "ubuntu-22.04",
    python: "3.10",
    ssmAgent: true,
  },
  "ubuntu-24.04": {
    ssmParameter:
      "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id",
    user: "ubuntu",
    nvidiaPreinstalled: false,
    os: "ubuntu-24.04",
    python: "3.12",
    ssmAgent: true,
  },
  "debian-12": {
    ssmParameter: "/aws/service/debian/release/12/latest/amd64",
    user: "admin",
    nvidiaPreinstalled: false,
    os: "debian-12",
    python: "3.11",
    ssmAgent: false,
  },
};
