package skillbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"

	"github.com/skillbox-dev/skillbox"
	_ "github.com/skillbox-dev/skillbox/sandbox/all" // register the backends
)

// Run a bundled example skill. A real program would leave Backend empty
// ("auto": the strongest isolating backend on the host); the example names
// the process backend so that it runs on any host with python3.
func Example() {
	cache, _ := os.MkdirTemp("", "skillbox-example-")
	defer os.RemoveAll(cache)

	rt, err := skillbox.New(skillbox.WithCacheDir(cache))
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()

	res, err := rt.Call(context.Background(), "text/word_stats",
		json.RawMessage(`{"text": "The cat sat. The cat ran!"}`),
		skillbox.CallOptions{Backend: "process"})
	if err != nil {
		log.Fatal(err)
	}
	var out struct {
		Words     int `json:"words"`
		Sentences int `json:"sentences"`
	}
	json.Unmarshal(res.Value, &out)
	fmt.Println(res.Skill.ID, res.Skill.Tier, out.Words, "words,", out.Sentences, "sentences")
	// Output: text/word_stats bundled 6 words, 2 sentences
}
