"""An asyncio program whose one task blocks the loop in parse_config().

Run by the watchdog tests as a user runs a program: ``python -m fastloop
--watchdog 0.1 watchdog_prog.py`` (or ``-m watchdog_prog``), or imported
and run by another runner. The line numbers matter to the tests
(``BLOCKING_LINE``).
"""

import asyncio
import time

BLOCKING_LINE = 16


def parse_config():
    time.sleep(0.4)


async def main():
    await asyncio.sleep(0)
    parse_config()
    print("done")


if __name__ == "__main__":
    asyncio.run(main())
