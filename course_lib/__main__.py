"""``python -m course_lib data list|fetch ...``: the data sets (see :mod:`course_lib.core.data.command`)."""

import sys

from course_lib.core.data.command import main

if len(sys.argv) < 2 or sys.argv[1] != "data":
    sys.exit("usage: python -m course_lib data {list,fetch} ...")
sys.exit(main(sys.argv[2:]))
