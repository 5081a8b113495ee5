package motoserver

import (
	"net/http"
	"testing"
)

func TestStartAnswersAndStops(t *testing.T) {
	var endpoint string
	t.Run("start", func(t *testing.T) {
		endpoint = Start(t)
		resp, err := http.Get(endpoint + "/moto-api/")
		if err != nil {
			t.Fatalf("moto_server at %s does not answer: %v", endpoint, err)
		}
		resp.Body.Close()
	})
	// The subtest's cleanup has stopped the server.
	if resp, err := http.Get(endpoint + "/moto-api/"); err == nil {
		resp.Body.Close()
		t.Fatalf("moto_server at %s still answers after the test ended", endpoint)
	}
}

func TestMissingBinaryFailsWithInstallHint(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Launch()
	if err == nil || err.Error() != InstallHint {
		t.Fatalf("Launch without moto_server on PATH = %v, want %q", err, InstallHint)
	}
}
