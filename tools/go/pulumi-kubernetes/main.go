// Command pulumi-resource-kubernetes serves the Pulumi Kubernetes provider.
//
// Upstream's main package embeds a schema and a Terraform mapping that its own build generates
// and does not publish in the module, so it cannot be built from the module proxy as it is.
// hack/build-tools.sh writes both files next to this one (the schema with its version set)
// before compiling; they are not committed.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var schema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve("kubernetes", version.Version, schema, terraformMapping)
}
