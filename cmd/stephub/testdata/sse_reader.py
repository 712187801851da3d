"""Reads a stephub SSE stream with requests, as a Python team would, and
prints each event's id line the moment iter_lines() yields it.

usage: sse_reader.py URL TOKEN [CERT_FILE]
"""
import sys

import requests


def main():
    url, token = sys.argv[1], sys.argv[2]
    verify = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] else True
    with requests.get(url, headers={"Authorization": "Bearer " + token},
                      stream=True, verify=verify, timeout=60) as resp:
        print("status", resp.status_code, flush=True)
        for line in resp.iter_lines():
            if line.startswith(b"id: "):
                print(line.decode(), flush=True)


if __name__ == "__main__":
    main()
