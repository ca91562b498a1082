"""A kustomize renderer for the subset deploy/k8s uses, for machines without kustomize.

No registry this project uses ships a kustomize binary (Debian's kubectl 1.20 embeds
kustomize v2, which predates the fields used here; PyPI's bindings need Python 3.14), so when
neither `kustomize` nor `kubectl` is on PATH the tests render with this. Where one is, the
tests render with both and require the same objects (test_k8s.render), which keeps this
honest. Supported, as kustomize v5 does them: `resources` (files and directories),
`namespace`, `labels` (`includeSelectors: false`, `includeTemplates`), `configMapGenerator`
(`files`; `behavior: replace`), `secretGenerator` (`envs`), `patches` with a `path` to a
strategic-merge patch of mappings only, and `images` (`newName`, `newTag`). Generated names
get kustomize's content hash, and references to them in pod specs are rewritten. Anything
else in a kustomization is an error, not silently ignored.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]
KNOWN = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "labels",
    "configMapGenerator",
    "secretGenerator",
    "patches",
    "images",
}
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")
ORIGINAL = "__kustomize_lite_original_name"  # kept on generated objects until the end


def render(path: Path) -> list[Obj]:
    objs = _build(path)
    renames = {}
    for o in objs:
        original = o.pop(ORIGINAL, None)
        if original is not None:
            o["metadata"]["name"] = f"{original}-{content_hash(o)}"
            renames[(o["kind"], original)] = o["metadata"]["name"]
    for o in objs:
        if o["kind"] in WORKLOADS:
            _rename_references(o["spec"]["template"]["spec"], renames)
    return objs


def _build(path: Path) -> list[Obj]:
    k = yaml.safe_load((path / "kustomization.yaml").read_text())
    unknown = set(k) - KNOWN
    if unknown:
        raise ValueError(f"{path}: kustomize_lite does not implement {sorted(unknown)}")
    objs: list[Obj] = []
    for entry in k.get("resources", []):
        target = path / entry
        if target.is_dir():
            objs += _build(target)
        else:
            objs += [d for d in yaml.safe_load_all(target.read_text()) if d]
    own: list[Obj] = []  # generated here: this level's labels apply to them too
    for g in k.get("configMapGenerator", []):
        data = {f: (path / f).read_text() for f in g["files"]}
        own += _generate(objs, "ConfigMap", g, {"data": data})
    for g in k.get("secretGenerator", []):
        data = {}
        for env in g["envs"]:
            for line in (path / env).read_text().splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    key, _, value = line.partition("=")
                    data[key.strip()] = encode_base64(value)
        own += _generate(objs, "Secret", g, {"type": "Opaque", "data": data})
    objs += own
    for p in k.get("patches", []):
        for patch in yaml.safe_load_all((path / p["path"]).read_text()):
            target = _find(objs, patch["kind"], patch["metadata"]["name"])
            _merge(target, patch)
    for spec in k.get("labels", []):
        if spec.get("includeSelectors"):
            raise ValueError("kustomize_lite: labels with includeSelectors are not implemented")
        for o in objs:
            o["metadata"].setdefault("labels", {}).update(spec["pairs"])
            if spec.get("includeTemplates") and o["kind"] in WORKLOADS:
                meta = o["spec"]["template"].setdefault("metadata", {})
                meta.setdefault("labels", {}).update(spec["pairs"])
                for claim in o["spec"].get("volumeClaimTemplates", []):
                    claim["metadata"].setdefault("labels", {}).update(spec["pairs"])
    for image in k.get("images", []):
        for o in objs:
            if o["kind"] in WORKLOADS:
                _retag(o["spec"]["template"]["spec"], image)
    if "namespace" in k:
        for o in objs:
            if o["kind"] == "Namespace":
                o["metadata"]["name"] = k["namespace"]
            else:
                o["metadata"]["namespace"] = k["namespace"]
    return objs


def encode_base64(value: str) -> str:
    """As kyaml's encodeBase64 writes a Secret's value: 70-character lines, each ended by a
    newline, once the encoding reaches 70 characters (Kubernetes' decoder skips newlines)."""
    encoded = base64.b64encode(value.encode()).decode()
    if len(encoded) // 70 + 1 == 1:
        return encoded
    return "".join(encoded[i : i + 70] + "\n" for i in range(0, len(encoded), 70))


def _generate(objs: list[Obj], kind: str, gen: Obj, body: Obj) -> list[Obj]:
    name = gen["name"]
    if gen.get("behavior", "create") == "replace":
        existing = next(o for o in objs if o["kind"] == kind and o.get(ORIGINAL) == name)
        existing.update(copy.deepcopy(body))
        return []
    if gen.get("behavior", "create") != "create":
        raise ValueError(f"kustomize_lite: behavior {gen['behavior']!r} is not implemented")
    obj: Obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": name}, **body}
    obj[ORIGINAL] = name
    return [obj]


def _find(objs: list[Obj], kind: str, name: str) -> Obj:
    (found,) = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def _merge(target: Obj, patch: Obj) -> None:
    for key, value in patch.items():
        if isinstance(value, list):
            raise ValueError("kustomize_lite: patches of lists are not implemented")
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _retag(pod: Obj, image: Obj) -> None:
    for c in pod.get("containers", []) + pod.get("initContainers", []):
        name, _, tag = c["image"].partition(":")
        if name == image["name"]:
            c["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}"


def _rename_references(node: Any, renames: dict[tuple[str, str], str]) -> None:
    if isinstance(node, list):
        for item in node:
            _rename_references(item, renames)
        return
    if not isinstance(node, dict):
        return
    for key, kind, field in (
        ("configMap", "ConfigMap", "name"),
        ("configMapKeyRef", "ConfigMap", "name"),
        ("configMapRef", "ConfigMap", "name"),
        ("secretKeyRef", "Secret", "name"),
        ("secretRef", "Secret", "name"),
        ("secret", "Secret", "secretName"),
    ):
        ref = node.get(key)
        if isinstance(ref, dict) and (kind, ref.get(field)) in renames:
            ref[field] = renames[(kind, ref[field])]
    for value in node.values():
        _rename_references(value, renames)


def content_hash(obj: Obj) -> str:
    """kustomize's name suffix (api/hasher, encodeConfigMap/encodeSecret): sha256 of the kind,
    the data (and a Secret's type) as Go's json.Marshal writes them, the first ten hex digits
    with 0 1 3 a e swapped for g h k m t. Its "name" field is always empty: kustomize looks the
    name up with the path "metadata/name" as one key, which finds nothing."""
    fields: Obj = {"kind": obj["kind"], "name": "", "data": obj["data"]}
    if obj["kind"] == "Secret":
        fields["type"] = obj.get("type", "Opaque")
    encoded = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e")):
        encoded = encoded.replace(char, escaped)  # Go's json.Marshal escapes these
    digest = hashlib.sha256(encoded.encode()).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))
