"""The conformance cases django-steps refuses on purpose, with the reason for each.

Besides these, every case needing protobuf message types is refused (the runner's
``MESSAGE_TYPES``): a context holds plain data, so no condition can reach one.
"""

from __future__ import annotations

CONTROL_CHARACTER = (
    "raw control character in the text (U+0000/U+0001 inside a bytes literal); refused so "
    "a condition displays as it evaluates, the escape \\x00 is accepted"
)
TIME_OF_A_VALUE = (
    "timestamp()/duration() of anything but a string literal; cel-python parses their "
    "text with a regular expression that backtracks exponentially"
)
NESTED_MACRO = "a comprehension inside another; the cost would be the product of the list sizes"
CONTEXT_TYPE = "a binding the context cannot hold (context data has no uint or bytes values)"

#: Case id -> the reason it is refused.
DELIBERATE_REFUSALS: dict[str, str] = {
    "comparisons/eq_literal/not_eq_dyn_timestamp_null": TIME_OF_A_VALUE,
    "conversions/identity/duration": TIME_OF_A_VALUE,
    "conversions/identity/timestamp": TIME_OF_A_VALUE,
    "comparisons/gt_literal/gt_bytes_one": CONTROL_CHARACTER,
    "comparisons/gt_literal/gt_bytes_one_to_empty": CONTROL_CHARACTER,
    "comparisons/gt_literal/not_gt_bytes_sorting": CONTROL_CHARACTER,
    "comparisons/lte_literal/lte_bytes_empty": CONTROL_CHARACTER,
    "comparisons/lte_literal/not_lte_bytes_length": CONTROL_CHARACTER,
    "comparisons/gte_literal/gte_bytes_to_empty": CONTROL_CHARACTER,
    "comparisons/gte_literal/not_gte_bytes_empty_to_nonempty": CONTROL_CHARACTER,
    "comparisons/gte_literal/gte_bytes_samelength": CONTROL_CHARACTER,
    "comparisons/bound/bytes_gt_left_false": CONTEXT_TYPE,
    "comparisons/bound/uint_eq_right_false": CONTEXT_TYPE,
    "macros/nested/all_all": NESTED_MACRO,
}

#: How each reason shows in the refusal's message, to check the case is refused for it.
REASON_MESSAGES = {
    CONTROL_CHARACTER: "invisible control character",
    TIME_OF_A_VALUE: "accepts only a string literal",
    NESTED_MACRO: "comprehensions cannot be nested",
    CONTEXT_TYPE: "context cannot hold",
}
