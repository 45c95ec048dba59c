"""Writes a Job's pod, from a rendered overlay, as a Pod for `podman kube play`.

Usage: python3 scripts/checks/job_for_kube_play.py RENDERED.yaml JOB POD_NAME OUT.yaml [VAR=value ...]

podman 4.3 plays Pods and Deployments, not Jobs: this takes Job JOB's pod
template (its containers, security context, restartPolicy: Never) as Pod
POD_NAME, with each VAR=value replacing that variable in every container
(podman has no Services: `relay-svc` is a network alias there, on the
relays' own port 8080 rather than a Service's 80). Prints the Job's
activeDeadlineSeconds and backoffLimit, which a test bounds its wait with.
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)
import sys

import yaml


def main(rendered, job_name, pod_name, out, overrides):
    jobs = [d for d in yaml.safe_load_all(open(rendered)) if d and d["kind"] == "Job" and d["metadata"]["name"] == job_name]
    if len(jobs) != 1:
        sys.exit(f"job_for_kube_play: {rendered} has {len(jobs)} Job(s) named {job_name}")
    job = jobs[0]
    spec = job["spec"]["template"]["spec"]
    for container in spec["containers"]:
        env = [e for e in container.get("env", []) if e["name"] not in overrides]
        container["env"] = env + [{"name": k, "value": v} for k, v in overrides.items()]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod_name, "labels": job["spec"]["template"]["metadata"].get("labels", {})},
        "spec": spec,
    }
    with open(out, "w") as f:
        yaml.safe_dump(pod, f)
    print(job["spec"]["activeDeadlineSeconds"], job["spec"].get("backoffLimit", 6))


if __name__ == "__main__":
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    main(*sys.argv[1:5], dict(kv.split("=", 1) for kv in sys.argv[5:]))
