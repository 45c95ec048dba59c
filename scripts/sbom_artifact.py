"""The SBOM beside an image: one platform's image in a pushed manifest list,
and an OCI layout holding that image's CycloneDX SBOM as an artifact.

    python3 scripts/sbom_artifact.py instance LIST.json ARCH
    python3 scripts/sbom_artifact.py layout SBOM.cdx.json LIST.json ARCH OUT_DIR

`instance` prints the digest of the linux/ARCH image in the manifest list
LIST.json (as `skopeo inspect --raw` prints it). `layout` writes OUT_DIR, an
OCI layout of one manifest: artifactType and its one layer
application/vnd.cyclonedx+json (the SBOM's bytes), an empty config, and a
`subject` naming that image, so that a registry with the OCI 1.1 referrers API
lists it under the image too. scripts/publish.sh pushes it (skopeo copy) to
the tag sha256-<image digest hex>.sbom in the image's repository: the tag
convention cosign's `attach sbom` uses, for registries without the referrers
API, such as Distribution 2.8.
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)

import hashlib
import json
import os
import sys

SBOM_TYPE = "application/vnd.cyclonedx+json"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"


def descriptor(list_path: str, arch: str) -> dict:
    with open(list_path) as f:
        manifests = json.load(f).get("manifests", [])
    for m in manifests:
        platform = m.get("platform", {})
        if platform.get("os") == "linux" and platform.get("architecture") == arch:
            return {k: m[k] for k in ("mediaType", "digest", "size")}
    found = ", ".join(str(m.get("platform")) for m in manifests)
    sys.exit(f"sbom_artifact: {list_path} has no linux/{arch} image (it has: {found or 'none'})")


def write_blob(out: str, data: bytes) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(out, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}


def layout(sbom_path: str, list_path: str, arch: str, out: str) -> None:
    subject = descriptor(list_path, arch)
    os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)
    with open(sbom_path, "rb") as f:
        sbom = f.read()
    json.loads(sbom)  # an SBOM that is not JSON is a bug upstream: stop here
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": SBOM_TYPE,
        "config": {"mediaType": EMPTY_TYPE, **write_blob(out, b"{}")},
        "layers": [{"mediaType": SBOM_TYPE, **write_blob(out, sbom)}],
        "subject": subject,
    }
    raw = json.dumps(manifest, separators=(",", ":")).encode()
    index = {"schemaVersion": 2, "manifests": [{"mediaType": manifest["mediaType"], **write_blob(out, raw)}]}
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f)
    with open(os.path.join(out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)


def main(argv: list) -> None:
    if len(argv) == 3 and argv[0] == "instance":
        print(descriptor(argv[1], argv[2])["digest"])
    elif len(argv) == 5 and argv[0] == "layout":
        layout(*argv[1:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
