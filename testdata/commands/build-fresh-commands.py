#!/usr/bin/env python3
"""Builds fresh-device-commands-test.jsonl, issue 8's third test set, from public command sentences that no earlier set
(and no earlier builder's pool) contained.

Usage: build-fresh-commands.py HA_INTENTS_GIT_DIR XSID_GIT_DIR OUT_FILE [DEV_SET.jsonl ...]
HA_INTENTS_GIT_DIR: a (bare) clone of github.com/home-assistant/intents (CC BY 4.0); XSID_GIT_DIR: a (bare) clone of
github.com/mainlp/xsid (CC BY-SA 4.0). Both are read at pinned commits, so the output is reproducible. DEV_SET files
are our existing sets (including ha-device-commands-test.jsonl): a line whose text is in one of them is left out.

Pools read:
1. Home Assistant test sentences of **older commits** (every commit reachable from the pin that touched tests/<lang>):
   tests/<lang>/<domain>_<Intent>.yaml as in build-ha-commands.py, with that commit's fixtures (tests/<lang>/_fixtures.yaml,
   called _common.yaml in early commits). Older files may name the brightness slot `brightness_pct`, add a
   `temperature_unit`, or leave out `domain` in light_*.yaml files (the file's domain then says it).
2. The English **sub-folder** files at the pin, tests/en/<Intent>/<slots>.yaml (slots directly on each block, the intent
   from the folder name, areas and entities declared in the file; a header comment `# context_area: true` means the
   sentences are said to a satellite in an area), which build-ha-commands.py did not read.
   A sentence is fresh only if its text is in no test file of the pin's top level for that language.
3. **xSID** 0.7 (van der Goot et al. 2021): data/xSID-0.7/{en,zh}.{test,valid}.conll, lines `# text =`, `# intent =`,
   `# slots: start:end:label,...` (English file; character spans into the text) and `# text-en =` (other languages: the
   English original). `alarm/set_alarm` lines whose only slot is a datetime that is a clock time with am/pm
   ("8am", "6:50 pm") become alarm_set at that 24-hour time; the Chinese translation of such a line gets the same call.
The mapping from an HA block onto one device call is build-ha-commands.py's `expected` (same rule, same drops).
"""
import importlib.util, json, os, re, subprocess, sys
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("build_ha", os.path.join(HERE, "build-ha-commands.py"))
ha = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ha)

HA_PIN = ha.PIN
XSID_PIN = "761d926c3f2e9f6bea13192d2f39cec1d04d9777"
ha.AREA_IDS["office"] = "office"  # early fixtures use bare ids ("office"), the pin "office_id"


def git(repo, *args):
    return subprocess.run(["git", "--git-dir", repo, *args], check=True, capture_output=True).stdout.decode("utf-8")


def norm(text):
    return " ".join(str(text).split()).casefold()


def normalise_slots(slots, path):
    """Older slot spellings onto the pin's; None when the block cannot be one of our calls (a Fahrenheit temperature)."""
    slots = dict(slots or {}) if isinstance(slots, dict) else None
    if slots is None:
        return None
    if "brightness_pct" in slots:
        slots["brightness"] = slots.pop("brightness_pct")
    if "temperature_unit" in slots:
        if str(slots.pop("temperature_unit")).casefold() not in ("c", "celsius", "°c"):
            return None
    if path.split("/")[-1].startswith("light_") and "domain" not in slots and "name" not in slots:
        slots["domain"] = "light"
    return slots


def ha_history(repo, lang, folder, pin_texts):
    """(text, call, source) for every sentence of an older version of a top-level test file."""
    commits = git(repo, "rev-list", HA_PIN, "--", f"tests/{folder}").split()
    seen_blobs, out = set(), []
    for commit in commits:  # newest first
        fixtures = None
        for line in git(repo, "ls-tree", commit, f"tests/{folder}/").splitlines():
            meta, path = line.split("\t")
            blob = meta.split()[2]
            name = path.split("/")[-1]
            if not name.endswith(".yaml") or name.startswith("_") or blob in seen_blobs:
                continue
            seen_blobs.add(blob)
            try:
                doc = yaml.safe_load(git(repo, "cat-file", "-p", blob))
            except yaml.YAMLError:
                continue
            if not isinstance(doc, dict):
                continue
            for b, block in enumerate(doc.get("tests") or []):
                intent = block.get("intent") if isinstance(block, dict) else None
                if not isinstance(intent, dict) or intent.get("name") not in ha.INTENTS:
                    continue
                slots = normalise_slots(intent.get("slots"), path)
                if slots is None:
                    continue
                fixtures = fixtures or ha.Fixtures(folder, commit)
                for s in block.get("sentences") or []:
                    text = " ".join(str(s).split())
                    if norm(text) in pin_texts:
                        continue
                    call = ha.expected(intent["name"], slots, intent.get("context"), text, fixtures)
                    if call:
                        out.append((text, call, f"home-assistant/intents {commit[:7]} {path} block {b + 1} ({intent['name']})"))
    return out


def ha_en_subfolders(repo, pin_texts):
    """(text, call, source) for the tests/en/<Intent>/<slots>.yaml files at the pin."""
    out = []
    for path in git(repo, "ls-tree", "-r", "--name-only", HA_PIN, "tests/en/").split():
        parts = path.split("/")
        if len(parts) != 4 or parts[2] not in ha.INTENTS:
            continue
        raw = git(repo, "show", f"{HA_PIN}:{path}")
        doc = yaml.safe_load(raw) or {}
        fixtures_doc = {
            "areas": [{"name": a["name"], "id": a["name"].casefold().replace(" ", "_")} for a in doc.get("areas") or []],
            "entities": [{"name": e["name"], "id": f"{e['domain']}.{e['name'].casefold().replace(' ', '_')}", "area": e.get("area")}
                         for e in doc.get("entities") or []],
        }
        fixtures = ha.Fixtures("en", text=yaml.safe_dump(fixtures_doc))
        context = {"area": "(the satellite's area)"} if re.search(r"^#\s*context_area:\s*true", raw, re.M) else None
        for b, block in enumerate(doc.get("tests") or []):
            slots = normalise_slots(block.get("slots"), path)
            if slots is None:
                continue
            for s in block.get("sentences") or []:
                text = " ".join(str(s).split())
                if norm(text) in pin_texts:
                    continue
                call = ha.expected(parts[2], slots, context, text, fixtures)
                if call:
                    out.append((text, call, f"home-assistant/intents {HA_PIN[:7]} {path} block {b + 1} ({parts[2]})"))
    return out


CLOCK = re.compile(r"^(?:at |for )?(\d{1,2})(?::(\d\d))?\s*(a\.?m\.?|p\.?m\.?)$", re.I)


def xsid_records(repo, name):
    """Each sentence of one conll file as a dict of its comment lines."""
    recs, cur = [], {}
    for line in git(repo, "show", f"{XSID_PIN}:data/xSID-0.7/{name}").splitlines():
        if not line.strip():
            if cur:
                recs.append(cur)
                cur.setdefault("id", str(len(recs)))  # the English files have no `# id` line: the sentence's number
            cur = {}
        elif line.startswith("# "):
            key, _, value = line[2:].partition(" = ") if " = " in line else line[2:].partition(": ")
            cur[key.strip().rstrip(":")] = value.strip()
    if cur:
        recs.append(cur)
        cur.setdefault("id", str(len(recs)))
    return recs


def xsid_alarms(repo):
    """{lang: [(text, call, source)]} for English set-alarm lines at a clock time with am/pm, and their Chinese translations."""
    out = {"en": [], "zh": []}
    for split in ("test", "valid"):
        call_of_en = {}
        for r in xsid_records(repo, f"en.{split}.conll"):
            if r.get("intent") != "alarm/set_alarm":
                continue
            spans = [s.split(":") for s in r.get("slots", "").split(",") if s]
            if len(spans) != 1 or spans[0][2] != "datetime":
                continue
            m = CLOCK.match(r["text"][int(spans[0][0]):int(spans[0][1])].strip())
            if not m:
                continue
            hour, minute, pm = int(m.group(1)), int(m.group(2) or 0), m.group(3).lower().startswith("p")
            if not 1 <= hour <= 12 or minute > 59:
                continue
            call = ("alarm_set", {"time": f"{hour % 12 + (12 if pm else 0):02d}:{minute:02d}"})
            call_of_en[r["text"]] = call
            out["en"].append((r["text"], call, f"xSID 0.7 en.{split}.conll id {r.get('id')} (alarm/set_alarm)"))
        for r in xsid_records(repo, f"zh.{split}.conll"):
            if r.get("intent") == "alarm/set_alarm" and r.get("text-en") in call_of_en:
                out["zh"].append((r["text"], call_of_en[r["text-en"]],
                                  f"xSID 0.7 zh.{split}.conll id {r.get('id')} (alarm/set_alarm; English: {r['text-en']})"))
    return out


def main(ha_repo, xsid_repo, out_path, dev_sets):
    ha.REPO = ha_repo
    dev_texts = set()
    for path in dev_sets:
        with open(path, encoding="utf-8") as f:
            dev_texts |= {norm(json.loads(l)["text"]) for l in f if l.strip()}
    xsid = xsid_alarms(xsid_repo)
    rows = []
    for lang, folder in ha.LANGS:
        pin_texts = set()
        for path in git(ha_repo, "ls-tree", "--name-only", HA_PIN, f"tests/{folder}/").split():
            if path.endswith(".yaml"):
                doc = yaml.safe_load(git(ha_repo, "show", f"{HA_PIN}:{path}")) or {}
                pin_texts |= {norm(s) for block in doc.get("tests") or [] for s in block.get("sentences") or []}
        found = (ha_en_subfolders(ha_repo, pin_texts) if lang == "en" else []) \
            + ha_history(ha_repo, lang, folder, pin_texts) + xsid.get(lang, [])
        rows += [{"lang": lang, "text": t, "name": c[0], "args": c[1], "source": src} for t, c, src in found]
    # Dedupe: keep the first of one text; a text with two different calls is ambiguous and goes.
    calls_of = {}
    for r in rows:
        calls_of.setdefault((r["lang"], norm(r["text"])), set()).add(json.dumps([r["name"], r["args"]], sort_keys=True))
    ha.write_unique(rows, calls_of, out_path, key_of=lambda r: (r["lang"], norm(r["text"])), skip=lambda key: key[1] in dev_texts)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])
