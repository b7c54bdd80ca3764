"""Writes docker/base-image-packages.txt: the Debian packages that python:3.11-slim-bookworm has before our Dockerfile
installs anything. Run on a Debian 12 (bookworm) machine after `apt-get update`:

    python3 docker/base_image_packages.py > docker/base-image-packages.txt

debian:bookworm-slim is a minbase bootstrap: the packages of Priority "required" and what they depend on.
docker-library/python's 3.11/slim-bookworm Dockerfile adds ca-certificates, netbase and tzdata, plus the libraries its
own build of Python links against, which this list leaves out: a list too short can only fail the deploy test, never
let a missing library through.
"""

import subprocess

PYTHON_IMAGE_ADDS = ("ca-certificates", "netbase", "tzdata")
# debootstrap merges /usr itself and installs this marker, which satisfies init-system-helpers' "usrmerge | ...".
BOOTSTRAP_ADDS = ("usr-is-merged",)


def stanzas() -> dict[str, dict[str, str]]:
    dump = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True, check=True).stdout  # noqa: S607
    packages: dict[str, dict[str, str]] = {}
    for block in dump.split("\n\n"):
        fields = dict(line.split(":", 1) for line in block.splitlines() if ":" in line and not line[0].isspace())
        if "Package" in fields:
            packages.setdefault(fields["Package"].strip(), {k: v.strip() for k, v in fields.items()})
    return packages


def alternatives(stanza: dict[str, str]) -> list[list[str]]:
    """Depends and Pre-Depends, each a list of alternatives."""
    clauses = []
    for field in ("Pre-Depends", "Depends"):
        for clause in filter(None, stanza.get(field, "").split(",")):
            clauses.append([alt.split("(")[0].split(":")[0].strip() for alt in clause.split("|")])
    return clauses


def closure(packages: dict[str, dict[str, str]], roots: list[str]) -> set[str]:
    """Roots and what they depend on. Of alternatives (real or virtual), one already chosen or of Priority required
    wins, else the first, as apt would pick."""
    providers: dict[str, list[str]] = {}
    for name, stanza in packages.items():
        for virtual in filter(None, stanza.get("Provides", "").split(",")):
            providers.setdefault(virtual.split("(")[0].strip(), []).append(name)
    required = set(roots)
    chosen = {name for name in roots if name in packages}
    todo = list(chosen)
    while todo:
        for clause in alternatives(packages[todo.pop()]):
            options = [real for alt in clause for real in ([alt] if alt in packages else providers.get(alt, []))]
            if options and not chosen.intersection(options):
                preferred = [real for real in options if real in required] or options
                pick = preferred[0]
                chosen.add(pick)
                todo.append(pick)
    return chosen


def main() -> None:
    packages = stanzas()
    required = [name for name, stanza in packages.items() if stanza.get("Priority") == "required"]
    print("# Debian packages in python:3.11-slim-bookworm (Debian 12) before our Dockerfile adds any; one a line.")
    print('# Written by docker/base_image_packages.py from Debian bookworm\'s package index: Priority "required"')
    print("# (debian:bookworm-slim's minbase) and their dependencies, plus docker-library/python's")
    print("# " + ", ".join(PYTHON_IMAGE_ADDS) + ". Read by clinic/tests/test_deploy.py.")
    for name in sorted(closure(packages, [*required, *BOOTSTRAP_ADDS, *PYTHON_IMAGE_ADDS])):
        print(name)


if __name__ == "__main__":
    main()
