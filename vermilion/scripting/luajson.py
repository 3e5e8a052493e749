"""cjson.encode / cjson.decode (lua-cjson 2.1 as bundled by Redis), in Python.

Encoding follows lua-cjson: tables whose keys are exactly 1..n are arrays (an empty
table is an object), numbers use %.14g, '/' is escaped; decoding maps null to
cjson.null and arrays/objects to tables.
"""

from __future__ import annotations

from lupa import lua51

_lua_type = lua51.lua_type

_ESCAPES = {ord('"'): '\\"', ord("\\"): "\\\\", ord("/"): "\\/", 8: "\\b", 12: "\\f",
            10: "\\n", 13: "\\r", 9: "\\t"}


class JSONError(Exception):
    pass


def _encode_string(value: bytes) -> str:
    text = value.decode("latin-1")
    out = []
    for ch in text:
        code = ord(ch)
        esc = _ESCAPES.get(code)
        if esc is not None:
            out.append(esc)
        elif code < 32 or code == 127:
            out.append("\\u%04x" % code)
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


class Config:
    """json_config_t: the settings cjson's configuration functions change. One per Lua
    state, as lua-cjson keeps it in the module's upvalue, so a setting outlives the
    script that made it (until SCRIPT FLUSH builds a new state)."""

    def __init__(self):
        self.encode_sparse_convert = 0
        self.encode_sparse_ratio = 2
        self.encode_sparse_safe = 10
        self.encode_max_depth = 1000
        self.decode_max_depth = 1000
        self.encode_invalid_numbers = 0  # 1: "nan"/"inf", 2: null
        self.decode_invalid_numbers = 1
        self.encode_keep_buffer = 1
        self.encode_number_precision = 14


_DEFAULT = Config()


def _encode_number(value, cfg: Config = _DEFAULT) -> str:
    # json_append_number()
    invalid = type(value) is float and (value != value or value in (float("inf"), float("-inf")))
    if invalid:
        if cfg.encode_invalid_numbers == 0:
            raise JSONError("Cannot serialise number: must not be NaN or Inf")
        if cfg.encode_invalid_numbers == 2:
            return "null"
        if value != value:
            return "nan"
        return "inf" if value > 0 else "-inf"
    precision = cfg.encode_number_precision
    if type(value) is int and abs(value) < 10**precision:
        return "%d" % value
    return "%.*g" % (precision, float(value))


def _encode(value, cfg: Config, depth) -> str:
    kind = type(value)
    if kind is bytes:
        return _encode_string(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int or kind is float:
        return _encode_number(value, cfg)
    if value is None or _lua_type(value) == "userdata":  # cjson.null
        return "null"
    if _lua_type(value) != "table":
        raise JSONError("Cannot serialise %s: type not supported" % _type_name(value))
    depth += 1  # json_check_encode_depth()
    if depth > cfg.encode_max_depth:
        raise JSONError("Cannot serialise, excessive nesting (%d)" % depth)
    items = list(value.items())
    keys = [k for k, _ in items]
    if items and all(type(k) in (int, float) and k >= 1 and k == int(k) for k in keys):
        n = int(max(keys))
        # lua_array_length(): excessively sparse arrays error, or become objects.
        sparse = (cfg.encode_sparse_ratio > 0 and n > len(keys) * cfg.encode_sparse_ratio
                  and n > cfg.encode_sparse_safe)
        if sparse and not cfg.encode_sparse_convert:
            raise JSONError("Cannot serialise table: excessively sparse array")
        if not sparse:
            lookup = dict(items)
            return "[" + ",".join(_encode(lookup.get(i), cfg, depth)
                                  for i in range(1, n + 1)) + "]"
    parts = []
    for k, v in items:
        if type(k) is bytes:
            key = _encode_string(k)
        elif type(k) in (int, float):
            key = '"' + _encode_number(k, cfg) + '"'
        else:
            raise JSONError("Cannot serialise %s: table key must be a number or string"
                            % _type_name(k))
        parts.append(key + ":" + _encode(v, cfg, depth))
    return "{" + ",".join(parts) + "}"


# -- decoding: lua-cjson's tokenizer and parser, for its exact error messages -----------

_ESCAPE_CHARS = {"\"": "\"", "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n",
                 "r": "\r", "t": "\t"}
_NUMBER_RE = __import__("re").compile(
    r"[-+]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|inf(?:inity)?|nan)",
    __import__("re").IGNORECASE)
_PUNCT = {"{": "T_OBJ_BEGIN", "}": "T_OBJ_END", "[": "T_ARR_BEGIN", "]": "T_ARR_END",
          ":": "T_COLON", ",": "T_COMMA"}
_INVALID_NUMBER_RE = __import__("re").compile(r"-?(?:0[xX]|inf|nan)", __import__("re").IGNORECASE)


class _Decoder:
    """json_next_token() / json_process_value() of lua-cjson 2.1."""

    def __init__(self, lua, null, text: str, cfg: Config = _DEFAULT):
        self.lua = lua
        self.null = null
        self.cfg = cfg
        self.text = text
        self.pos = 0
        self.depth = 0

    def error(self, expected: str, token) -> JSONError:
        kind, value, index = token
        found = value if kind == "T_ERROR" else kind
        return JSONError("Expected %s but found %s at character %d" % (expected, found, index + 1))

    def token(self):
        text, pos = self.text, self.pos
        while pos < len(text) and text[pos] in " \t\n\r":
            pos += 1
        self.pos = pos
        if pos >= len(text):
            return ("T_END", None, pos)
        ch = text[pos]
        if ch in _PUNCT:
            self.pos = pos + 1
            return (_PUNCT[ch], None, pos)
        if ch == '"':
            return self.string(pos)
        invalid = _INVALID_NUMBER_RE.match(text, pos) is not None  # json_is_invalid_number()
        if (ch == "-" or ch.isdigit()) and invalid and not self.cfg.decode_invalid_numbers:
            return ("T_ERROR", "invalid number", pos)
        if ch == "-" or ch.isdigit() or (invalid and self.cfg.decode_invalid_numbers):
            match = _NUMBER_RE.match(text, pos)
            if match is None:
                return ("T_ERROR", "invalid number", pos)
            self.pos = match.end()
            return ("T_NUMBER", float(match.group().replace("inity", "")) if "x" not in
                    match.group().lower() else float(int(match.group(), 16)), pos)
        for word, value in (("true", True), ("false", False), ("null", None)):
            if text.startswith(word, pos):
                self.pos = pos + len(word)
                return ("T_NULL" if value is None else "T_BOOLEAN", value, pos)
        return ("T_ERROR", "invalid token", pos)

    def string(self, start: int):
        text, pos = self.text, start + 1
        out = []
        while True:
            if pos >= len(text):
                return ("T_ERROR", "unexpected end of string", pos)
            ch = text[pos]
            if ch == '"':
                break
            if ch == "\\":
                nxt = text[pos + 1:pos + 2]
                if nxt == "u":
                    code, used = self.unicode(pos)
                    if code is None:
                        return ("T_ERROR", "invalid unicode escape code", pos)
                    out.append(chr(code).encode("utf-8", "surrogatepass").decode("latin-1"))
                    pos += used
                    continue
                if nxt not in _ESCAPE_CHARS:
                    return ("T_ERROR", "invalid escape code", pos)
                out.append(_ESCAPE_CHARS[nxt])
                pos += 2
                continue
            out.append(ch)
            pos += 1
        self.pos = pos + 1
        return ("T_STRING", "".join(out).encode("latin-1"), start)

    def unicode(self, pos: int):
        def hex4(at):
            digits = self.text[at:at + 4]
            if len(digits) != 4 or any(c not in "0123456789abcdefABCDEF" for c in digits):
                return None
            return int(digits, 16)

        code = hex4(pos + 2)
        if code is None:
            return None, 0
        if 0xD800 <= code <= 0xDBFF:  # a surrogate pair must follow
            if self.text[pos + 6:pos + 8] != "\\u":
                return None, 0
            low = hex4(pos + 8)
            if low is None or not 0xDC00 <= low <= 0xDFFF:
                return None, 0
            return 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00), 12
        if 0xDC00 <= code <= 0xDFFF:
            return None, 0
        return code, 6

    def value(self, token):
        kind, value, index = token
        if kind in ("T_STRING", "T_BOOLEAN"):
            return value
        if kind == "T_NUMBER":
            return _lua_number(value)
        if kind == "T_NULL":
            return self.null
        if kind in ("T_OBJ_BEGIN", "T_ARR_BEGIN"):
            self.depth += 1
            if self.depth > self.cfg.decode_max_depth:
                raise JSONError("Found too many nested data structures (%d) at character %d"
                                % (self.depth, index + 1))
            result = self.object() if kind == "T_OBJ_BEGIN" else self.array()
            self.depth -= 1
            return result
        raise self.error("value", token)

    def object(self):
        table = self.lua.table_from()
        token = self.token()
        if token[0] == "T_OBJ_END":
            return table
        while True:
            if token[0] != "T_STRING":
                raise self.error("object key string", token)
            key = token[1]
            token = self.token()
            if token[0] != "T_COLON":
                raise self.error("colon", token)
            table[key] = self.value(self.token())
            token = self.token()
            if token[0] == "T_OBJ_END":
                return table
            if token[0] != "T_COMMA":
                raise self.error("comma or object end", token)
            token = self.token()

    def array(self):
        items = []
        token = self.token()
        if token[0] == "T_ARR_END":
            return self.lua.table_from(items)
        while True:
            items.append(self.value(token))
            token = self.token()
            if token[0] == "T_ARR_END":
                return self.lua.table_from(items)
            if token[0] != "T_COMMA":
                raise self.error("comma or array end", token)
            token = self.token()

    def decode(self):
        result = self.value(self.token())
        token = self.token()
        if token[0] != "T_END":
            raise self.error("the end", token)
        return result


def _lua_number(value: float):
    # A Lua number is a double; integral ones cross to Python as ints when exact.
    if value == value and abs(value) < 2**53 and value == int(value):
        return int(value)
    return value


def _type_name(value) -> str:
    kind = type(value)
    if kind is bool:
        return "boolean"
    if kind is bytes:
        return "string"
    if kind is int or kind is float:
        return "number"
    if value is None:
        return "nil"
    return _lua_type(value) or "userdata"


_BOOL_OPTIONS = (b"off", b"on")


def _arg_init(name: str, args, count: int):
    # json_arg_init(): at most count arguments, the missing ones nil.
    if len(args) > count:
        raise JSONError("bad argument #%d to '%s' (found too many arguments)" % (count + 1, name))
    return list(args) + [None] * (count - len(args))


def _integer_option(name: str, value, current: int, low: int, high: int) -> int:
    # json_integer_option(): luaL_checkinteger() then the range check.
    if value is None:
        return current
    if type(value) is bytes:  # lua_tonumber() of a numeric string
        try:
            value = float(value)
        except ValueError:
            pass
    if type(value) not in (int, float):
        raise JSONError("bad argument #1 to '%s' (number expected, got %s)"
                        % (name, _type_name(value)))
    value = int(value)
    if not low <= value <= high:
        raise JSONError("bad argument #1 to '%s' (expected integer between %d and %d)"
                        % (name, low, high))
    return value


def _enum_option(name: str, value, current: int, options=_BOOL_OPTIONS) -> int:
    # json_enum_option() with bool_true 1: a boolean, or one of the option names.
    if value is None:
        return current
    if type(value) is bool:
        return int(value)
    if type(value) is bytes and value in options:
        return options.index(value)
    if type(value) is bytes:
        raise JSONError("bad argument #1 to '%s' (invalid option '%s')"
                        % (name, value.decode("latin-1")))
    raise JSONError("bad argument #1 to '%s' (string expected, got %s)"
                    % (name, _type_name(value)))


def _enum_result(setting: int, options=_BOOL_OPTIONS):
    return bool(setting) if setting in (0, 1) else options[setting]


_INT_MAX = 2**31 - 1
_INVALID_OPTIONS = (b"off", b"on", b"null")


def library(lua, null):
    # Errors are raised as Python exceptions: the script's error handler turns them
    # into "ERR <message>", as luaL_error() from a C function reads in Redis.
    cfg = Config()

    def encode(*args):
        if len(args) != 1:
            raise JSONError("bad argument #1 to 'encode' (expected 1 argument)")
        return _encode(args[0], cfg, 0).encode("latin-1")

    def decode(*args):
        if len(args) != 1:
            raise JSONError("bad argument #1 to 'decode' (expected 1 argument)")
        text = args[0]
        if type(text) in (int, float):
            text = _encode_number(text).encode()  # lua_tolstring() of a number
        if type(text) is not bytes:
            raise JSONError("bad argument #1 to 'decode' (string expected, got %s)"
                            % _type_name(text))
        if len(text) >= 2 and (text[0] == 0 or text[1] == 0):
            raise JSONError("JSON parser does not support UTF-16 or UTF-32")
        return _Decoder(lua, null, text.decode("latin-1"), cfg).decode()

    # The configuration functions (json_cfg_*): each sets what it is given and
    # returns the current value(s).
    def encode_sparse_array(*args):
        convert, ratio, safe = _arg_init("encode_sparse_array", args, 3)
        cfg.encode_sparse_convert = _enum_option("encode_sparse_array", convert,
                                                 cfg.encode_sparse_convert)
        cfg.encode_sparse_ratio = _integer_option("encode_sparse_array", ratio,
                                                  cfg.encode_sparse_ratio, 0, _INT_MAX)
        cfg.encode_sparse_safe = _integer_option("encode_sparse_array", safe,
                                                 cfg.encode_sparse_safe, 0, _INT_MAX)
        return (_enum_result(cfg.encode_sparse_convert), cfg.encode_sparse_ratio,
                cfg.encode_sparse_safe)

    def integer_setting(name, attr, low, high):
        def configure(*args):
            (value,) = _arg_init(name, args, 1)
            setattr(cfg, attr, _integer_option(name, value, getattr(cfg, attr), low, high))
            return getattr(cfg, attr)
        return configure

    def enum_setting(name, attr, options=_BOOL_OPTIONS):
        def configure(*args):
            (value,) = _arg_init(name, args, 1)
            setattr(cfg, attr, _enum_option(name, value, getattr(cfg, attr), options))
            return _enum_result(getattr(cfg, attr), options)
        return configure

    return lua.table_from({
        b"encode": encode,
        b"decode": decode,
        b"encode_sparse_array": encode_sparse_array,
        b"encode_max_depth": integer_setting("encode_max_depth", "encode_max_depth", 1, _INT_MAX),
        b"decode_max_depth": integer_setting("decode_max_depth", "decode_max_depth", 1, _INT_MAX),
        b"encode_number_precision": integer_setting("encode_number_precision",
                                                    "encode_number_precision", 1, 14),
        # The kept buffer is a C allocation detail: only the setting is remembered.
        b"encode_keep_buffer": enum_setting("encode_keep_buffer", "encode_keep_buffer"),
        b"encode_invalid_numbers": enum_setting("encode_invalid_numbers",
                                                "encode_invalid_numbers", _INVALID_OPTIONS),
        b"decode_invalid_numbers": enum_setting("decode_invalid_numbers",
                                                "decode_invalid_numbers"),
        b"null": null,
        b"_NAME": b"cjson",
        b"_VERSION": b"2.1.0",
    })
