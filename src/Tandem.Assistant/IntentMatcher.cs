using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Tandem.Assistant;

/// <summary>
/// What the fast matcher made of an utterance: a validated call (null when it is unsure), the intent it recognised,
/// how sure it is (1 = intent and every required slot found), the language, and why it is unsure.
/// </summary>
public sealed record IntentMatch(ToolCall? Call, string? Intent, double Confidence, string Language, string? Problem)
{
    public bool IsSure => Call is not null && Confidence >= 1;
}

/// <summary>
/// The voice-command fast path: keyword and pattern rules for English, Chinese and French, with slot extraction for
/// rooms, numbers (digits and number words in the three languages), times of day and durations. No model runs;
/// an utterance that matches no rule, or lacks a required slot, comes back unsure, for the local model to decide.
/// Rules are checked in a fixed order (timer, alarm, call, volume, lights, thermostat, media) so that, e.g.,
/// "set a timer for 10 minutes" is not read as a temperature.
/// </summary>
public sealed partial class IntentMatcher(DeviceCommands registry)
{
    public IntentMatcher() : this(DeviceCommands.Default) { }

    public IntentMatch Match(string utterance)
    {
        string lang = Language(utterance);
        string text = Normalize(utterance, lang);
        var (intent, call, problem) = Rules(text, utterance);
        if (call is null) return new IntentMatch(null, intent, intent is null ? 0 : 0.5, lang, problem ?? "no device command recognised");
        var errors = registry.Validate(call);
        return errors.Count == 0
            ? new IntentMatch(call, intent, 1, lang, null)
            : new IntentMatch(null, intent, 0.5, lang, string.Join("; ", errors));
    }

    static ToolCall Call(string name, string arg, object value) => new(name, new Dictionary<string, object> { [arg] = value });

    (string? Intent, ToolCall? Call, string? Problem) Rules(string t, string original)
    {
        string? room = RoomOf(t);
        var args = new Dictionary<string, object>(StringComparer.Ordinal);
        if (room is not null) args["room"] = room;

        if (Has(t, TimerWords))
            return DurationOf(t) is { } secs ? ("timer", Call("timer_set", "seconds", secs), null) : ("timer", null, "no duration");
        // "wake me up in thirty minutes", "set an alarm for five minutes from now", "半小时后叫我": a wake-up after a
        // duration is a countdown, not a time of day.
        if (Has(t, AlarmWords) && RelativeDurationOf(t) is { } after)
            return ("timer", Call("timer_set", "seconds", after), null);
        if (Has(t, AlarmWords))
        {
            if (TimeOf(t) is { } time) return ("alarm", Call("alarm_set", "time", time), null);
            // "do not make any noise until the morning alarm" names an alarm but asks for silence.
            return IsMute(t) ? ("volume", Call("media_volume", "level", 0L), null) : ("alarm", null, "no time of day");
        }
        if (ContactOf(original) is { } contact)
            return ("call", Call("call_contact", "contact", contact), null);
        // We have no mute function: muting (the speakers, or the assistant's own voice) is volume 0.
        if (IsMute(t))
            return ("volume", Call("media_volume", "level", 0L), null);
        if (Has(t, VolumeWords))
            return LevelOf(t, lowest: 0) is { } vol ? ("volume", Call("media_volume", "level", vol), null) : ("volume", null, "no volume level");
        // A player set to a percentage is its volume ("règle la TV à 50 %", "set the speakers to 70 %"); a bare number
        // is not, as it may be a channel ("put the TV on 20").
        if (Has(t, MediaNouns) && !Has(t, LightWords) && t.Contains('%') && LevelOf(t, lowest: 0) is { } playerLevel)
            return ("volume", Call("media_volume", "level", playerLevel), null);

        string? lightState = LightState(t);
        bool percent = t.Contains('%');
        bool brightnessWord = Has(t, BrightnessWords);
        // A room with an on/off verb or a percentage, and no other device named, means its lights ("turn off the dining
        // room", "关掉餐厅", "set the bedroom to 50%").
        bool roomOnly = room is not null && (lightState is not null || percent || brightnessWord) && !Has(t, ThermostatWords) && !Has(t, MediaNouns);
        if (Has(t, LightWords) || roomOnly)
        {
            long? level = LevelOf(t, lowest: 1);
            // A level with no on/off verb ("set the kitchen lights to 40") is a brightness too.
            if (brightnessWord || percent || lightState is null && level is not null)
            {
                if (level is null) return ("lights", null, "no brightness level");
                args["level"] = level.Value;
                return ("lights", new("lights_brightness", args), null);
            }
            // Naming the lights and nothing else ("Lumière cuisine", "kitchen lights", "客厅的灯") asks for light.
            if (lightState is null && OnlyLightsNamed(t)) lightState = "on";
            if (lightState is null) return ("lights", null, "on or off?");
            args["state"] = lightState;
            return ("lights", new("lights_set", args), null);
        }
        // Indirect requests: darkness asks for light; going to sleep asks for dark; "power off the current" cuts the lights.
        if (Has(t, "dark", "darkness", "好黑", "太黑", "很黑", "sombre", "obscurité"))
            return ("lights", new("lights_set", WithState(args, "on")), null);
        if (Has(t, "going to sleep", "go to bed", "我要睡了", "我去睡觉", "je vais dormir", "je vais me coucher", "power off the current", "断电"))
            return ("lights", new("lights_set", WithState(args, "off")), null);
        if (Has(t, ThermostatWords))
        {
            if (TemperatureOf(t) is not { } celsius) return ("thermostat", null, "no temperature");
            args["celsius"] = celsius == Math.Floor(celsius) ? (long)celsius : celsius;
            return ("thermostat", new("thermostat_set", args), null);
        }
        if (MediaAction(t) is { } action)
            return ("media", Call("media_control", "action", action), null);
        return (null, null, null);
    }

    // ---- lexicons (keys are matched on the normalized text: lower case, hyphens as spaces, numbers as digits) ----

    static readonly string[] TimerWords =
        ["timer", "countdown", "count down", "计时", "定时", "倒计时", "minuteur", "minuterie", "compte à rebours"];

    static readonly string[] AlarmWords =
        ["alarm", "wake me", "get me up", "get up", "wake up call", "alert for", "alert me", "remind me", "tell me when it is",
         "闹钟", "叫醒", "叫我", "起床", "提醒我", "réveil", "réveille", "alarme"];

    static readonly string[] VolumeWords = ["volume", "loudness", "sound level", "音量", "声音", " le son ", " du son "];

    static readonly string[] LightWords =
        ["light", "lamp", "bulb", "brightness", "illuminat", "灯", "照明", "亮度", "lumière", "lampe", "luminosité", "éclairage",
         "plafonnier", "ampoule", "luminaire", "éclaire", "illumine"];

    static readonly string[] BrightnessWords = ["brightness", "dim ", "亮度", "luminosité"];

    static readonly string[] ThermostatWords =
        ["thermostat", "temperature", "heating", "heater", "degree", "air conditioning", "climate", "温度", "空调", "暖气", "度",
         "température", "chauffage", "degré", "climatisation", "clim "];

    /// <summary>Things other than lights that a room command may name; with one of them, a room is not a light command.</summary>
    static readonly string[] MediaNouns =
        ["tv", "television", "music", "song", "radio", "speaker", "player", "电视", "音乐", "歌", "音响", "musique", "télé", "chanson", "enceinte",
         "watts"]; // "monte les watts": French slang for the loudness

    // Highest and lowest settings; the lowest light is 1 % (0 % would be off), the lowest volume 0.
    static readonly string[] MaxWords =
        ["max", "maximum", "highest", "brightest", "loudest", "full", "最大", "最亮", "最高", "最响", "à fond", "au plus fort", "au plus haut", "maximale"];
    static readonly string[] MinWords =
        ["min ", "minimum", "lowest", "dimmest", "softest", "最小", "最暗", "最低", "au plus bas", "minimale"];

    static Dictionary<string, object> WithState(Dictionary<string, object> args, string state)
    {
        args["state"] = state;
        return args;
    }

    /// <summary>A level in percent: the first number, else 100 for "maximum", else <paramref name="lowest"/> for "minimum".</summary>
    static long? LevelOf(string t, long lowest)
    {
        if (FirstNumber(t) is { } n) return (long)Math.Round(n);
        if (Has(t, MaxWords)) return 100;
        if (Has(t, MinWords)) return lowest;
        return null;
    }

    /// <summary>"on", "off" or null: the switching verb of a lights command, in any of the three languages.</summary>
    static string? LightState(string t)
    {
        // French closes and opens lights as it does doors ("ferme la lumière", "ouvre les lumières"); only with a light
        // named, so that "ferme la porte de la cuisine" stays a door.
        if (Has(t, LightWords))
        {
            if (Has(t, "ferme", "fermer", "fermez")) return "off";
            if (Has(t, "ouvre", "ouvrir", "ouvrez")) return "on";
        }
        if (Has(t, " off ", "lights out", "light out", "turn out", " go out", "put out", "discontinue", "cease", " no light", "deactivate", "disable", "extinguish",
                "关", "熄", "éteins", "éteindre", "éteint", "éteignez", "coupe", "couper", "désactive")) return "off";
        if (Has(t, " on ", "light up", "illuminate", "activate", "enable", "打开", "开", "点亮", "allume", "allumer", "allumez", "active", "activer",
                "éclaire", "illumine"))
            return "on";
        return null;
    }

    /// <summary>Words that may stand beside a light and a room in a bare "lights in the kitchen" (articles, prepositions, "all").</summary>
    static readonly HashSet<string> LightPhraseFillers =
        ["the", "in", "of", "all", "la", "le", "les", "l'", "dans", "de", "du", "des", "d'", "toute", "toutes", "tout", "tous"];

    /// <summary>Whether the command only names lights, optionally with a room and fillers: nothing asks anything else.</summary>
    static bool OnlyLightsNamed(string t)
    {
        string core = Core(t);
        foreach (var (_, names) in RoomNames) foreach (var n in names) core = core.Replace(n, " ", StringComparison.Ordinal);
        if (core.Any(c => c >= '\u3400' && c <= '\u9fff'))
            return core.Replace("的", "").Replace("灯", "").Replace("所有", "").Replace("全部", "").Trim().Length == 0;
        return core.Replace("l'", "l' ").Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .All(w => LightPhraseFillers.Contains(w) || LightWordStems.Any(w.StartsWith));
    }

    static readonly string[] LightWordStems = ["light", "lamp", "lumière", "lampe", "éclairage", "plafonnier", "ampoule", "luminaire"];

    // Silencing the speakers or the assistant's voice: SLURP's "mute" requests ("be quiet", "stop talking", "静音", "tais-toi").
    static readonly string[] MuteWords =
        ["mute", "muted", "silence", "silent", " quiet ", "quiet mode", "quiet time", "hush", "shush", "shut up",
         "静音", "安静", "闭嘴", "别吵", "别出声", "不要出声",
         "muet", "sourdine", "silencieux", "du calme", "au calme", "chut", "tais toi", "taisez vous", "fais taire", "éteins toi"];
    static readonly string[] SoundWords =
        ["sound", "speaker", " audio ", "声音", "扬声器", "音响", "音频", "son ", "sons ", "l'audio", "haut parleur", "bruit"];
    /// <summary>What is played: stopping it ("stop audiobook", "arrête le livre audio") is playback, not silence.</summary>
    static readonly string[] PlayedThings =
        ["audiobook", "audio book", "book", "podcast", "music", "song", "track", "有声书", "书", "播客", "音乐", "歌", "livre", "musique", "chanson", "morceau"];
    static readonly string[] SoundOff =
        [" off ", "shut down", "stop", "don't make", "do not make", "关", "停止", "coupe", "arrête", "aucun", "ne fais"];
    static readonly string[] SpeechWords =
        ["talk", "speak", "respond", "answer", "reply", "noise", "说话", "说了", "再说", "出声", "回应", "回答", "发出",
         "parle", "parler", "paroles", "réponds", "répondre", "bruit", "dis rien"];
    static readonly string[] Negations =
        ["don't", "dont ", "do not", " no ", " not ", "stop", "quit", "别", "不要", "不许", "停止", " ne ", " n'", " pas ", "arrête", "plus de", "aucun"];
    /// <summary>Whole commands (politeness stripped) that switch the assistant itself off: "please shut off", "请关掉", "va dormir".</summary>
    static readonly HashSet<string> AssistantOff =
        ["shut off", "turn off", "switch off", "power off", "shut down", "go to sleep", "关掉", "关了", "关闭", "去睡觉", "睡觉", "va dormir", "dors"];

    /// <summary>Mute words; a sound-making thing switched off ("turn off the speakers", "停止音频"); speech refused
    /// ("do not talk", "别说话", "ne parle pas"); or a bare "shut off" said to the assistant.</summary>
    static bool IsMute(string t)
    {
        if (Has(t, MuteWords)) return true;
        if (Has(t, SoundWords) && Has(t, SoundOff) && !Has(t, PlayedThings)) return true;
        if (Has(t, SpeechWords) && Has(t, Negations)) return true;
        return AssistantOff.Contains(Core(t));
    }

    /// <summary>Seconds of a duration said as "in …", "… from now", "dans …", "…后" (relative to now), else null.</summary>
    static long? RelativeDurationOf(string t)
    {
        if (DurationOf(t) is not { } secs) return null;
        return Has(t, " in ", "from now", " dans ", "后", "以后", "之后") ? secs : null;
    }

    /// <summary>The playback action; checked last, so these words only count when no other device was named.
    /// Order matters: "previous" before "next" ("passe à la précédente"), "resume" before "pause" ("取消暂停").</summary>
    static string? MediaAction(string t)
    {
        // A TV's channels too: 上一台/下一台 ("the channel before/after").
        if (Has(t, "previous", "replay", "上1台", "上1个台", "上1个频道", "last song", "last track", "go back", "skip back", "back to the", "上1首", "上1曲", "上1个", "上1集", "上首",
                "前1首", "précédent", "précédente", "d'avant", "reviens", "retour", "recule", "en arrière")) return "previous";
        if (Has(t, "next", "skip", "forward", "下1台", "下1个台", "下1个频道", "换台", "下1首", "下1曲", "下1个", "下1集", "下1章", "下首", "切歌", "换1首", "换歌", "跳过",
                "suivant", "suivante", "passe", "saute", "zappe", "prochain", "prochaine")) return "next";
        if (Has(t, "resume", "continue", "unpause", "keep playing", "keep reading", "carry on", "继续", "恢复", "取消暂停",
                "reprends", "reprendre", "reprenez", "relance", "enlève la pause", "retire la pause")) return "resume";
        // "remets la musique en route", "remettre la lecture en marche": set going again.
        if (Has(t, "remets", "remettre", "remettez") && Has(t, "en marche", "en route")) return "resume";
        // The French play button says "Lecture": a bare "lecture"/"lire" (on a player or in a room) resumes what was playing.
        if (BarePlayButton().IsMatch(Core(t))) return "resume";
        if (Has(t, "pause", " hold ", "wait", "暂停", "等1下", "等一下", "等等", "稍等", "attends", "attendez")) return "pause";
        if (Has(t, "stop", "停止", "停", "别放", "arrête", "arrêter", "arrêtez", "stoppe")) return "stop";
        if (Has(t, "play", "start reading", "start playing", "put on", "播放", "放歌", "放音乐", "放1首", "开始读", "读书",
                "joue", "jouer", "lance", "commence à lire", "mets de la musique", "mets la musique")) return "play";
        return null;
    }

    [GeneratedRegex(@"^(?:lecture|lire)(?: (?:sur|dans) (?:la |le |les |l' ?)?\S+)?$")]
    private static partial Regex BarePlayButton();
}
