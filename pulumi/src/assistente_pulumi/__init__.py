"""Pulumi programs that stand Assistente Digital up on AWS, Azure, Google Cloud or on-prem."""
