package egress

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

// Two secrets bound to one host where one value holds the other (a client
// id, and "id:secret" for Basic credentials): a host's echo of the longer
// one is redacted whole, whichever secret comes first, in headers as in
// bodies. Before, a header's redaction went secret by secret, so the
// shorter value was replaced inside the longer one, and the rest of the
// longer value (its secret part) reached the sandbox.
func TestOverlappingValuesRedactedWhole(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Echo", r.Header.Get("X-Creds"))
		io.WriteString(w, r.Header.Get("X-Creds"))
	}))
	defer ts.Close()
	id := Secret{Name: "A_CLIENT_ID", Placeholder: NewPlaceholder(), Value: "client-0001", AllowHTTP: true}
	pair := Secret{Name: "B_CLIENT_PAIR", Placeholder: NewPlaceholder(), Value: "client-0001:topsecret-value", AllowHTTP: true}
	for _, order := range [][]Secret{{id, pair}, {pair, id}} {
		for i := range order {
			order[i].Hosts = rules(t, "api.test")
		}
		h := start(t, Config{Allow: rules(t, "api.test"), Resolve: map[string][]netip.Addr{"api.test": {loop4}}, Secrets: order})
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://api.test:%d/", portOf(t, ts)), nil)
		req.Header.Set("X-Creds", "creds="+pair.Placeholder+"; id="+id.Placeholder)
		res, err := h.client(nil).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		want := "creds=" + pair.Placeholder + "; id=" + id.Placeholder
		if got := res.Header.Get("X-Echo"); got != want || string(body) != want {
			t.Errorf("%s first: header %q, body %q, want %q", order[0].Name, got, body, want)
		}
	}
}
