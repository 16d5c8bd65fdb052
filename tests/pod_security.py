"""The Pod Security Standards' "restricted" profile, as a check on pod specs.

Written from the published rules (kubernetes.io/docs/concepts/security/pod-security-standards,
"Baseline" and "Restricted" tables, Kubernetes v1.30+): each rule below names the
fields it reads. ``violations(pod_spec)`` lists what breaks the profile;
``pod_specs(manifest)`` finds the pod specs inside a Job, DaskJob or RayJob.
"""

from __future__ import annotations

from typing import Any, Iterator

__all__ = ["violations", "pod_specs"]

_BASELINE_CAPABILITIES = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL",
                          "MKNOD", "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID",
                          "SYS_CHROOT"}
_RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                       "persistentVolumeClaim", "projected", "secret"}
_SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
                 "net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies",
                 "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                 "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
                 "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"}
_SELINUX_TYPES = {None, "", "container_t", "container_init_t", "container_kvm_t",
                  "container_engine_t"}


def _containers(pod: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from pod.get(key) or []


def violations(pod: dict[str, Any]) -> list[str]:
    """Every way ``pod`` (a PodSpec) breaks the restricted profile; empty if it meets it."""
    problems: list[str] = []
    pod_sc = pod.get("securityContext") or {}
    # -- baseline ----------------------------------------------------------------------
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            problems.append(f"host namespaces: {field} must be unset or false")
    if (pod_sc.get("windowsOptions") or {}).get("hostProcess"):
        problems.append("HostProcess: pod windowsOptions.hostProcess must be false")
    for sysctl in pod_sc.get("sysctls") or []:
        if sysctl.get("name") not in _SAFE_SYSCTLS:
            problems.append(f"sysctls: {sysctl.get('name')} is not in the safe set")
    if (pod_sc.get("seLinuxOptions") or {}).get("type") not in _SELINUX_TYPES:
        problems.append("SELinux: pod seLinuxOptions.type is not allowed")
    if (pod_sc.get("appArmorProfile") or {}).get("type") not in (None, "RuntimeDefault",
                                                                 "Localhost"):
        problems.append("AppArmor: pod profile must be RuntimeDefault or Localhost")
    # -- restricted: volumes, non-root, seccomp at pod level ----------------------------
    for volume in pod.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= _RESTRICTED_VOLUMES:
            problems.append(f"volume types: {volume.get('name')} uses {sorted(kinds)}")
    pod_non_root = pod_sc.get("runAsNonRoot") is True
    if pod_sc.get("runAsUser") == 0:
        problems.append("non-root user: pod runAsUser must not be 0")
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    if pod_seccomp not in (None, "RuntimeDefault", "Localhost"):
        problems.append(f"seccomp: pod profile {pod_seccomp} is not allowed")
    for container in _containers(pod):
        name = container.get("name")
        sc = container.get("securityContext") or {}
        if sc.get("privileged"):
            problems.append(f"privileged: container {name}")
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            problems.append(f"HostProcess: container {name}")
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                problems.append(f"host ports: container {name} uses hostPort")
        if sc.get("procMount") not in (None, "Default"):
            problems.append(f"/proc mount: container {name} must use Default")
        if (sc.get("seLinuxOptions") or {}).get("type") not in _SELINUX_TYPES:
            problems.append(f"SELinux: container {name}")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"privilege escalation: container {name} must set "
                            "allowPrivilegeEscalation: false")
        if sc.get("runAsNonRoot") is False or not (pod_non_root or sc.get("runAsNonRoot")):
            problems.append(f"non-root: container {name} must run with runAsNonRoot: true")
        if sc.get("runAsUser") == 0:
            problems.append(f"non-root user: container {name} runAsUser must not be 0")
        seccomp = (sc.get("seccompProfile") or {}).get("type")
        if seccomp not in (None, "RuntimeDefault", "Localhost") or (
                seccomp is None and pod_seccomp is None):
            problems.append(f"seccomp: container {name} needs RuntimeDefault or Localhost")
        capabilities = sc.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            problems.append(f"capabilities: container {name} must drop ALL")
        added = set(capabilities.get("add") or [])
        if added - {"NET_BIND_SERVICE"}:
            problems.append(f"capabilities: container {name} adds {sorted(added)}")
        if added - _BASELINE_CAPABILITIES:
            problems.append(f"capabilities: container {name} adds beyond baseline")
    return problems


def pod_specs(manifest: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(where, PodSpec) for every pod a Job, DaskJob or RayJob would create."""
    spec = manifest.get("spec") or {}
    kind = manifest.get("kind")
    if kind == "Job":
        return [("template", spec["template"]["spec"])]
    if kind == "DaskJob":
        cluster = spec["cluster"]["spec"]
        return [("job", spec["job"]["spec"]), ("scheduler", cluster["scheduler"]["spec"]),
                ("worker", cluster["worker"]["spec"])]
    if kind == "RayJob":
        ray = spec["rayClusterSpec"]
        found = [("head", ray["headGroupSpec"]["template"]["spec"])]
        found += [(f"worker {g['groupName']}", g["template"]["spec"])
                  for g in ray.get("workerGroupSpecs") or []]
        if spec.get("submitterPodTemplate"):
            found.append(("submitter", spec["submitterPodTemplate"]["spec"]))
        return found
    return []
