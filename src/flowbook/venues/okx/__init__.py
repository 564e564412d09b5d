"""OKX v5 public market data: messages, parser, sequencer (seqId/prevSeqId), CRC32 checksum, feed."""

from .checksum import book_checksum, checksum_string, signed_crc32
from .feed import OkxFeed, instrument_from_info, is_inverse_id
from .parser import PONG, Push, decode, decode_instruments
from .sequencer import Action, BookSequencer, StringBook

__all__ = [
    "PONG",
    "Action",
    "BookSequencer",
    "OkxFeed",
    "Push",
    "StringBook",
    "book_checksum",
    "checksum_string",
    "decode",
    "decode_instruments",
    "instrument_from_info",
    "is_inverse_id",
    "signed_crc32",
]
