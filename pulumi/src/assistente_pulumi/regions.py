"""Regions where each cloud offers what the stacks need (three availability zones).

A typo in a region should stop the program before anything is created, with a hint, instead of
failing half-way through an update when the cloud API rejects the first resource.
"""

from __future__ import annotations

import difflib
from typing import Final

# Regions with at least three availability zones (EKS, RDS Multi-AZ and ElastiCache need them).
AWS_REGIONS: Final = frozenset(
    {
        "af-south-1",
        "ap-east-1",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-south-1",
        "ap-south-2",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-southeast-3",
        "ap-southeast-4",
        "ca-central-1",
        "eu-central-1",
        "eu-central-2",
        "eu-north-1",
        "eu-south-1",
        "eu-south-2",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "il-central-1",
        "me-central-1",
        "me-south-1",
        "sa-east-1",
        "us-east-1",
        "us-east-2",
        "us-west-2",
    }
)

# Azure regions with availability zones (zone-redundant PostgreSQL HA and zonal AKS pools).
AZURE_REGIONS: Final = frozenset(
    {
        "australiaeast",
        "brazilsouth",
        "canadacentral",
        "centralindia",
        "centralus",
        "eastasia",
        "eastus",
        "eastus2",
        "francecentral",
        "germanywestcentral",
        "italynorth",
        "japaneast",
        "koreacentral",
        "mexicocentral",
        "northeurope",
        "norwayeast",
        "polandcentral",
        "qatarcentral",
        "southafricanorth",
        "southcentralus",
        "southeastasia",
        "spaincentral",
        "swedencentral",
        "switzerlandnorth",
        "uaenorth",
        "uksouth",
        "westeurope",
        "westus2",
        "westus3",
    }
)

# Google Cloud regions (all have three or more zones).
GCP_REGIONS: Final = frozenset(
    {
        "africa-south1",
        "asia-east1",
        "asia-east2",
        "asia-northeast1",
        "asia-northeast2",
        "asia-northeast3",
        "asia-south1",
        "asia-south2",
        "asia-southeast1",
        "asia-southeast2",
        "australia-southeast1",
        "australia-southeast2",
        "europe-central2",
        "europe-north1",
        "europe-southwest1",
        "europe-west1",
        "europe-west2",
        "europe-west3",
        "europe-west4",
        "europe-west6",
        "europe-west8",
        "europe-west9",
        "europe-west10",
        "europe-west12",
        "me-central1",
        "me-central2",
        "me-west1",
        "northamerica-northeast1",
        "northamerica-northeast2",
        "southamerica-east1",
        "southamerica-west1",
        "us-central1",
        "us-east1",
        "us-east4",
        "us-east5",
        "us-south1",
        "us-west1",
        "us-west2",
        "us-west3",
        "us-west4",
    }
)

REGIONS: Final = {"aws": AWS_REGIONS, "azure": AZURE_REGIONS, "gcp": GCP_REGIONS}


def check_region(cloud: str, region: str) -> str:
    """Returns ``region`` if ``cloud`` knows it, else raises ValueError with the closest names."""
    known = REGIONS[cloud]
    if region in known:
        return region
    close = difflib.get_close_matches(region, sorted(known), n=3, cutoff=0.6)
    hint = f"; você quis dizer {', '.join(close)}?" if close else ""
    raise ValueError(f"região desconhecida para {cloud}: {region!r}{hint}")
