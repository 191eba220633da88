package skillbox

import (
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/sandbox"
)

// The sandbox cache key changes with a bound secret's value but does not
// hold it (nor any other granted value) in cleartext.
func TestSandboxKeyHashesSecrets(t *testing.T) {
	spec := func(value string) sandbox.Spec {
		return sandbox.Spec{
			SkillID: "a/b", Digest: "sha256:00",
			Env:     map[string]string{"K": "skillbox-secret-0123456789abcdef0123456789abcdef", "PLAIN": "plain-value"},
			Network: []sandbox.HostPort{{Host: "api.example.com", Port: 443}},
			Secrets: []sandbox.SecretBinding{{Name: "K", Placeholder: "skillbox-secret-0123456789abcdef0123456789abcdef", Value: value, Hosts: []sandbox.HostPort{{Host: "api.example.com"}}}},
		}
	}
	k1, err := sandboxKey("linux", spec("first-secret-value"))
	if err != nil {
		t.Fatal(err)
	}
	k1again, _ := sandboxKey("linux", spec("first-secret-value"))
	k2, _ := sandboxKey("linux", spec("second-secret-value"))
	other, _ := sandboxKey("process", spec("first-secret-value"))
	if k1 != k1again {
		t.Error("the key is not deterministic")
	}
	if k1 == k2 || k1 == other {
		t.Error("a changed secret value or backend reuses the key")
	}
	for _, k := range []string{k1, k2} {
		if strings.Contains(k, "secret-value") || strings.Contains(k, "plain-value") {
			t.Errorf("key holds a value in cleartext: %s", k)
		}
	}
}

// The key tells bundles apart by their digest: the manifest, which the
// digest covers, is not encoded again; without a digest it is.
func TestSandboxKeyDigest(t *testing.T) {
	key := func(digest, manifest string) string {
		k, err := sandboxKey("linux", sandbox.Spec{SkillID: "a/b", Digest: digest, Manifest: []byte(manifest)})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	if key("sha256:00", `{"name":"b"}`) == key("sha256:01", `{"name":"b"}`) {
		t.Error("two digests share a key")
	}
	if key("", `{"name":"b"}`) == key("", `{"name":"c"}`) {
		t.Error("without a digest, two manifests share a key")
	}
}
