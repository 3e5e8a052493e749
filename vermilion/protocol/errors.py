"""Error replies, copied byte for byte from Redis 7.0 (server.c shared objects, t_*.c).

A handler raises ``CommandError(errors.X)``; the dispatcher turns it into ``-X\\r\\n``.
The first word (ERR, WRONGTYPE, NOAUTH...) is the error code counted in INFO errorstats.
"""


class CommandError(Exception):
    """An error reply. ``message`` is the text after the leading '-'."""

    __slots__ = ("message",)

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    @property
    def code(self) -> str:
        return self.message.split(" ", 1)[0]


WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
SYNTAX = "ERR syntax error"
NOT_INTEGER = "ERR value is not an integer or out of range"
NOT_FLOAT = "ERR value is not a valid float"
OVERFLOW = "ERR increment or decrement would overflow"
NO_SUCH_KEY = "ERR no such key"
OUT_OF_RANGE = "ERR index out of range"
DB_INDEX = "ERR DB index is out of range"
INVALID_DB_INDEX = "ERR invalid DB index"
SAME_OBJECT = "ERR source and destination objects are the same"
INVALID_EXPIRE = "ERR invalid expire time in '{}' command"
NOAUTH = "NOAUTH Authentication required."
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."
AUTH_NOT_CONFIGURED = (
    "ERR AUTH <password> called without any password configured for the default user. "
    "Are you sure your configuration is correct?"
)
MAX_CLIENTS = "ERR max number of clients reached"
STRING_TOO_LONG = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
BIT_OFFSET = "ERR bit offset is not an integer or out of range"
BIT_VALUE = "ERR bit is not an integer or out of range"
INCR_NAN_INF = "ERR increment would produce NaN or Infinity"
TIMEOUT_NEGATIVE = "ERR timeout is negative"
NO_PROTO = "NOPROTO unsupported protocol version"
OOM = "OOM command not allowed when used memory > 'maxmemory'."
READONLY = "READONLY You can't write against a read only replica."
LOADING = "LOADING Redis is loading the dataset in memory"


def wrong_arity(fullname: str) -> str:
    return f"ERR wrong number of arguments for '{fullname}' command"


def unknown_command(argv: list[bytes]) -> str:
    # server.c processCommand(): the first args are quoted, 128 chars in all.
    args = ""
    for arg in argv[1:]:
        if len(args) >= 128:
            break
        args += "'%s' " % _text(arg)[: 128 - len(args)]
    return "ERR unknown command '%s', with args beginning with: %s" % (_text(argv[0])[:128], args)


def unknown_subcommand(sub: bytes, container: str) -> str:
    return "ERR unknown subcommand '%s'. Try %s HELP." % (_text(sub)[:128], container.upper())


def _text(b: bytes) -> str:
    # Redis prints the argument with %s: raw bytes, cut at the first NUL. latin-1 maps
    # bytes 1:1 to code points, and the encoder maps them back (encode_message).
    return b.split(b"\0", 1)[0].decode("latin-1")


def encode_message(message: str) -> bytes:
    """The error text as bytes: raw argument bytes survive (see _text)."""
    try:
        return message.encode("latin-1")
    except UnicodeEncodeError:
        return message.encode("utf-8", "replace")


def sanitize(message: str) -> str:
    # Redis replaces CR/LF in error text with spaces so the reply stays one line.
    return message.replace("\r", " ").replace("\n", " ")

# t_string.c / bitops.c (strings and bitmaps family).
DECREMENT_OVERFLOW = "ERR decrement would overflow"
OFFSET_OUT_OF_RANGE = "ERR offset is out of range"
LCS_WRONGTYPE = "ERR The specified keys must contain string values"
LCS_LEN_AND_IDX = "ERR If you want both the length and indexes, please just use IDX."
LCS_TOO_LONG = "ERR String too long for LCS"
LCS_MEMORY = "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"
BITFIELD_TYPE = (
    "ERR Invalid bitfield type. Use something like i16 u8. "
    "Note that u64 is not supported but i64 is."
)
BITFIELD_OVERFLOW_TYPE = "ERR Invalid OVERFLOW type specified"
BITFIELD_RO_GET_ONLY = "ERR BITFIELD_RO only supports the GET subcommand"
BITOP_NOT_ONE_KEY = "ERR BITOP NOT must be called with a single source key."
BITPOS_BIT = "ERR The bit argument must be 1 or 0."

# -- lists and hashes (t_list.c, t_hash.c, object.c getRangeLongFromObjectOrReply) --
MUST_BE_POSITIVE = "ERR value is out of range, must be positive"
NUMKEYS_POSITIVE = "ERR numkeys should be greater than 0"
COUNT_POSITIVE = "ERR count should be greater than 0"
LPOS_RANK_ZERO = (
    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... "
    "or use negative to start from the end of the list"
)
LPOS_COUNT_NEGATIVE = "ERR COUNT can't be negative"
LPOS_MAXLEN_NEGATIVE = "ERR MAXLEN can't be negative"
HASH_NOT_INTEGER = "ERR hash value is not an integer"
HASH_NOT_FLOAT = "ERR hash value is not a float"
NAN_OR_INFINITY = "ERR value is NaN or Infinity"
VALUE_OUT_OF_RANGE = "ERR value is out of range"
VALUE_NOT_IN_LONG_RANGE = (
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
)
INVALID_CURSOR = "ERR invalid cursor"

# CONFIG (config.c)
CONFIG_UNKNOWN_OPTION = "ERR Unknown option or number of arguments for CONFIG SET - '{}'"
CONFIG_SET_FAILED = "ERR CONFIG SET failed (possibly related to argument '{}') - {}"
CONFIG_IMMUTABLE = "can't set immutable config"
CONFIG_PROTECTED = "can't set protected config"
CONFIG_DUPLICATE = "duplicate parameter"
CONFIG_NO_FILE = "ERR The server is running without a config file"
CONFIG_REWRITE_FAILED = "ERR Rewriting config file: {}"

# -- streams (t_stream.c) ----------------------------------------------------------------
STREAM_INVALID_ID = "ERR Invalid stream ID specified as stream command argument"
XADD_ID_TOO_SMALL = "ERR The ID specified in XADD is equal or smaller than the target stream top item"
XADD_ID_ZERO = "ERR The ID specified in XADD must be greater than 0-0"
STREAM_EXHAUSTED = "ERR The stream has exhausted the last possible ID, unable to add more items"
STREAM_MAXLEN_NEGATIVE = "ERR The MAXLEN argument must be >= 0."
STREAM_LIMIT_NEGATIVE = "ERR The LIMIT argument must be >= 0."
STREAM_MAXLEN_AND_MINID = "ERR syntax error, MAXLEN and MINID options at the same time are not compatible"
STREAM_LIMIT_NO_STRATEGY = "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"
STREAM_LIMIT_NO_APPROX = "ERR syntax error, LIMIT cannot be used without the special ~ option"
XTRIM_NO_STRATEGY = "ERR syntax error, XTRIM must be called with a trimming strategy"
STREAM_INVALID_START = "ERR invalid start ID for the interval"
STREAM_INVALID_END = "ERR invalid end ID for the interval"
XREAD_UNBALANCED = ("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' "
                    "must be specified.")
XREAD_GROUP_OPTION = "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead."
XREAD_NOACK_OPTION = "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead."
XREAD_GT_ID = ("ERR The > ID can be specified only when calling XREADGROUP using the GROUP "
               "<group> <consumer> option.")
XREADGROUP_MISSING_GROUP = "ERR Missing GROUP option for XREADGROUP"
XREADGROUP_DOLLAR = ("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read "
                     "the history of this consumer by specifying a proper ID, or use the > ID to "
                     "get new messages. The $ ID would just return an empty result set.")
XREADGROUP_NOGROUP = "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option"
STREAM_NOGROUP = "NOGROUP No such key '{}' or consumer group '{}'"
STREAM_NO_SUCH_GROUP = "NOGROUP No such consumer group '{}' for key name '{}'"
BUSYGROUP = "BUSYGROUP Consumer Group name already exists"
XGROUP_KEY_MUST_EXIST = ("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE "
                         "you may want to use the MKSTREAM option to create an empty stream "
                         "automatically.")
ENTRIESREAD_INVALID = "ERR value for ENTRIESREAD must be positive or -1"
XSETID_ENTRIES_ADDED_NEGATIVE = "ERR entries_added must be positive"
XSETID_SMALLER_THAN_MAXDELETED_ARG = ("ERR The ID specified in XSETID is smaller than the provided "
                                      "max_deleted_entry_id")
XSETID_SMALLER_THAN_MAXDELETED = ("ERR The ID specified in XSETID is smaller than current "
                                  "max_deleted_entry_id")
XSETID_SMALLER_THAN_TOP = "ERR The ID specified in XSETID is smaller than the target stream top item"
XSETID_ENTRIES_ADDED_SMALL = ("ERR The entries_added specified in XSETID is smaller than the target "
                              "stream length")
XCLAIM_MIN_IDLE = "ERR Invalid min-idle-time argument for XCLAIM"
XCLAIM_IDLE = "ERR Invalid IDLE option argument for XCLAIM"
XCLAIM_TIME = "ERR Invalid TIME option argument for XCLAIM"
XCLAIM_RETRYCOUNT = "ERR Invalid RETRYCOUNT option argument for XCLAIM"
XCLAIM_UNKNOWN_OPTION = "ERR Unrecognized XCLAIM option '{}'"
XAUTOCLAIM_MIN_IDLE = "ERR Invalid min-idle-time argument for XAUTOCLAIM"
XAUTOCLAIM_COUNT = "ERR COUNT must be > 0"
SUBCOMMAND_SYNTAX = "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP."
TIMEOUT_NOT_INTEGER = "ERR timeout is not an integer or out of range"
STREAM_ELEMENTS_TOO_LARGE = "ERR Elements are too large to be stored"

# blocked.c / networking.c: blocking commands and CLIENT UNBLOCK.
TIMEOUT_NOT_FLOAT = "ERR timeout is not a float or out of range"
UNBLOCK_REASON = "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"
UNBLOCKED_BY_CLIENT = "UNBLOCKED client unblocked via CLIENT UNBLOCK"
