#!/usr/bin/env python3
"""Builds ha-device-commands-test.jsonl, issue 8's second test set, from the Home Assistant intents test sentences.

Usage: build-ha-commands.py HA_INTENTS_GIT_DIR OUT_FILE [DEV_SET.jsonl ...]
HA_INTENTS_GIT_DIR is a (bare) git clone of github.com/home-assistant/intents (CC BY 4.0); the files are read at the
commit pinned below, so the output is reproducible. DEV_SET files are our development sets: a line whose text is
already in one of them is left out.

Layout read: tests/<lang>/<domain>_<Intent>.yaml (top level only) is YAML with `tests:`, a list of blocks
{sentences: [str], intent: {name, slots: {...}, context: {...}?}}; tests/<lang>/_fixtures.yaml lists `areas`
({name, id}) and `entities` ({name, id "domain.x", area id}).

The selection rule (testdata/ORIGIN.md says the same in words) maps a block onto exactly one of our device calls, using
only the block's intent and slots, or drops it; it never looks at what our matcher does.
"""
import json, subprocess, sys
import yaml

PIN = "aa550032a57b67c13995c032220bc4101521ead2"
LANGS = (("en", "en"), ("fr", "fr"), ("zh", "zh-cn"))
REPO = sys.argv[1] if __name__ == "__main__" else None  # build-ha-history-commands.py sets it when it imports this file

# Fixture area ids (all three languages) -> our rooms. Areas not listed (garage, guest room, outside) are not modelled.
AREA_IDS = {
    "kitchen_id": "kitchen", "kitchen": "kitchen",
    "living_room_id": "living_room", "living_room": "living_room",
    "bedroom_id": "bedroom", "bedroom": "bedroom",
    "office_id": "office", "bathroom": "bathroom",
    "entrance_id": "hallway", "entrance": "hallway", "hall": "hallway",
}
MEDIA = {"HassMediaPause": "pause", "HassMediaUnpause": "resume", "HassMediaNext": "next", "HassMediaPrevious": "previous"}
INTENTS = {"HassTurnOn", "HassTurnOff", "HassLightSet", "HassSetVolume", "HassStartTimer", "HassClimateSetTemperature", *MEDIA}


def git(*args):
    return subprocess.run(["git", "--git-dir", REPO, *args], check=True, capture_output=True).stdout.decode("utf-8")


class Fixtures:
    def __init__(self, folder, commit=PIN, text=None):
        # Older commits call the file _common.yaml; `text` is a fixtures document given directly.
        if text is None:
            names = git("ls-tree", "--name-only", commit, f"tests/{folder}/").split()
            name = next((n for n in (f"tests/{folder}/_fixtures.yaml", f"tests/{folder}/_common.yaml") if n in names), None)
            text = git("show", f"{commit}:{name}") if name else "{}"
        d = yaml.safe_load(text) or {}
        self.areas = {a["name"].casefold(): a["id"] for a in d.get("areas", [])}
        self.area_names = {a["id"]: a["name"] for a in d.get("areas", [])}
        self.entities = {e["name"].casefold(): e for e in d.get("entities", [])}

    def room_of_area(self, name):
        """Our room for an area slot value, or None when the area is unknown or not modelled."""
        area_id = self.areas.get(str(name).casefold())
        return AREA_IDS.get(area_id) if area_id else None

    def room_of_named(self, name, domain):
        """Our room for an entity named in a `name` slot: it must be of `domain` and its name must say its room
        ("Bedroom Lamp", "卧室灯"); a name that does not ("Play Corner", "lampe de chevet") cannot be a room command."""
        e = self.entities.get(str(name).casefold())
        if e is None or not e["id"].startswith(domain + ".") or e.get("area") not in AREA_IDS:
            return None
        area_name = self.area_names.get(e["area"], "")
        return AREA_IDS[e["area"]] if area_name and area_name.casefold() in e["name"].casefold() else None


def room_slot(slots, context, sentence, fx, domain):
    """(ok, room): room from the area slot, else from a named entity; ok=False drops the sentence."""
    if "floor" in slots:
        return False, None
    if "area" in slots:
        room = fx.room_of_area(slots["area"])
        if room is None:
            return False, None
        # An area that comes from the satellite's context is not in the words: keep the line only if it names it.
        if context and str(context.get("area", "")).casefold() == str(slots["area"]).casefold() \
                and str(slots["area"]).casefold() not in sentence.casefold():
            return False, None
        return True, room
    if "name" in slots and slots["name"] != "all":
        room = fx.room_of_named(slots["name"], domain)
        return (room is not None), room
    if context and "area" in context:
        return False, None
    return True, None


def expected(intent, slots, context, sentence, fx):
    """The device call (name, args) for one sentence, or None to drop it."""
    slots = dict(slots or {})
    if intent in ("HassTurnOn", "HassTurnOff"):
        light = slots.get("domain") == "light" or (
            "name" in slots and "domain" not in slots and fx.room_of_named(slots["name"], "light") is not None)
        if not light or set(slots) - {"domain", "area", "name", "floor"}:
            return None
        ok, room = room_slot(slots, context, sentence, fx, "light")
        args = {"state": "on" if intent == "HassTurnOn" else "off"}
        return ("lights_set", {**({"room": room} if room else {}), **args}) if ok else None
    if intent == "HassLightSet":
        if set(slots) - {"brightness", "area", "name", "floor"} or "brightness" not in slots:
            return None
        ok, room = room_slot(slots, context, sentence, fx, "light")
        level = int(slots["brightness"])
        return ("lights_brightness", {**({"room": room} if room else {}), "level": level}) if ok and 0 <= level <= 100 else None
    if intent in MEDIA:
        # media_control has no target: the player named (TV, speakers, a room's) does not change the call.
        return ("media_control", {"action": MEDIA[intent]}) if set(slots) <= {"name", "area"} else None
    if intent == "HassSetVolume":
        if set(slots) - {"name", "area", "volume_level"} or "volume_level" not in slots:
            return None
        level = int(slots["volume_level"])
        return ("media_volume", {"level": level}) if 0 <= level <= 100 else None
    if intent == "HassStartTimer":
        # A named timer or one that runs a command has slots timer_set cannot carry.
        if set(slots) - {"hours", "minutes", "seconds"} or not slots:
            return None
        secs = 3600 * int(slots.get("hours", 0)) + 60 * int(slots.get("minutes", 0)) + int(slots.get("seconds", 0))
        return ("timer_set", {"seconds": secs}) if 1 <= secs <= 86400 else None
    if intent == "HassClimateSetTemperature":
        if set(slots) - {"temperature", "area", "name", "floor"} or "temperature" not in slots:
            return None
        ok, room = room_slot(slots, context, sentence, fx, "climate")
        t = slots["temperature"]
        celsius = int(t) if float(t) == int(float(t)) else float(t)
        return ("thermostat_set", {**({"room": room} if room else {}), "celsius": celsius}) if ok and 5 <= celsius <= 35 else None
    return None


def main(OUT, DEV_SETS):
    dev_texts = set()
    for path in DEV_SETS:
        with open(path, encoding="utf-8") as f:
            dev_texts |= {" ".join(json.loads(l)["text"].split()).casefold() for l in f if l.strip()}
    rows, calls_of = [], {}
    for lang, folder in LANGS:
        fx = Fixtures(folder)
        files = sorted(f for f in git("ls-tree", "--name-only", PIN, f"tests/{folder}/").split()
                       if f.endswith(".yaml") and not f.split("/")[-1].startswith("_"))
        for f in files:
            doc = yaml.safe_load(git("show", f"{PIN}:{f}"))
            for b, block in enumerate(doc.get("tests", [])):
                intent = block.get("intent", {})
                if intent.get("name") not in INTENTS:
                    continue
                for s in block.get("sentences", []):
                    text = " ".join(str(s).split())
                    call = expected(intent["name"], intent.get("slots"), intent.get("context"), text, fx)
                    if call is None or text.casefold() in dev_texts:
                        continue
                    key = (lang, text.casefold())
                    calls_of.setdefault(key, set()).add(json.dumps(call, sort_keys=True))
                    rows.append({"lang": lang, "text": text, "name": call[0], "args": call[1],
                                 "source": f"home-assistant/intents {PIN[:7]} {f} block {b + 1} ({intent['name']})"})
    write_unique(rows, calls_of, OUT, key_of=lambda r: (r["lang"], r["text"].casefold()))


def write_unique(rows, calls_of, out_path, key_of, skip=lambda key: False):
    """The same sentence twice: keep the first; with two different calls it is ambiguous and goes. Writes the JSONL
    and prints the count per (language, function)."""
    seen, out = set(), []
    for r in rows:
        key = key_of(r)
        if key in seen or len(calls_of[key]) > 1 or skip(key):
            continue
        seen.add(key)
        out.append(r)
    with open(out_path, "w", encoding="utf-8") as f:
        for r in out:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    by = {}
    for r in out:
        by[(r["lang"], r["name"])] = by.get((r["lang"], r["name"]), 0) + 1
    print(len(out), "lines", sorted(by.items()), file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[2], sys.argv[3:])
