"""lakibench -discovery's moto: a moto server seeded in its own process.

Reads one JSON object per line on stdin ({"name", "value", "tags"}) until a
line "END", creates each secret with moto's own _add_secret (the code path
of CreateSecret, without HTTP and without the name lookup that scans every
secret, which makes seeding by the API quadratic), then serves moto on
127.0.0.1:<port> and prints "ready <n>" once listening. It serves until
stdin closes or it is killed.

With --cache-listing, ListSecrets builds a listing's full result on its
first page and serves the later pages of that listing from it: the same
pages, in the same order, with the same tokens. moto 5.2.1 rebuilds every
matching secret's description on every page, so a listing of N secrets
costs it O(N^2 / page size); AWS pages in O(page). Without the flag moto
runs unchanged.
"""

import json
import sys
import threading

from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.secretsmanager import models


def cache_listing():
    cached = {}

    def list_secrets(self, filters, max_results=models.MAX_RESULTS_DEFAULT, next_token=None, include_planned_deletion=False):
        key = (id(self), json.dumps(filters, sort_keys=True), bool(include_planned_deletion))
        if next_token is None or key not in cached:
            full = []
            for secret in self.secrets.values():
                if getattr(secret, "deleted_date", None) and not include_planned_deletion:
                    continue
                if models._matches(secret, filters):
                    full.append(secret.to_dict())
            cached[key] = full
        return self._get_secret_values_page_and_next_token(cached[key], max_results, next_token)

    models.SecretsManagerBackend.list_secrets = list_secrets


def main():
    args = sys.argv[1:]
    port = int(args[args.index("--port") + 1])
    region = args[args.index("--region") + 1]
    if "--cache-listing" in args:
        cache_listing()
    backend = models.secretsmanager_backends[DEFAULT_ACCOUNT_ID][region]
    plain = {}
    backend.secrets = plain  # a plain dict while seeding: no lookup scans
    n = 0
    for line in sys.stdin:
        line = line.strip()
        if line == "END":
            break
        spec = json.loads(line)
        tags = [{"Key": k, "Value": v} for k, v in spec["tags"].items()]
        backend._add_secret(spec["name"], secret_string=spec["value"], tags=tags)
        n += 1
    store = models.SecretsStore()
    dict.update(store, plain)
    backend.secrets = store
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    print(f"ready {n}", flush=True)
    # Serve until the parent closes stdin (or kills this process).
    done = threading.Event()

    def wait_stdin():
        sys.stdin.read()
        done.set()

    threading.Thread(target=wait_stdin, daemon=True).start()
    done.wait()
    server.stop()


if __name__ == "__main__":
    main()
