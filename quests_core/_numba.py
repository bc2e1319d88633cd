"""numba settings shared by every kernel of quests_core, chosen once.

fastmath leaves out 'nnan' and 'ninf': kernels take exp and log of values that may be
huge, tiny or infinite, and must see them honestly. 'afn' is left out so exp and log keep
full accuracy (parity with quests is checked to 1e-9).
"""

FASTMATH = {"nsz", "arcp", "contract", "reassoc"}
JIT = dict(nogil=True, cache=True, fastmath=FASTMATH)
PARALLEL_JIT = dict(JIT, parallel=True)
