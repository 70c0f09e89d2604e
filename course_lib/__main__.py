"""``python -m course_lib data list|fetch ...``: the data sets (see :mod:`course_lib.core.data.command`);
``python -m course_lib submit NN [--out FILE]``: the zip to hand in (see :mod:`course_lib.core.handin`)."""

import sys

COMMANDS = ("data", "submit")

if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
    sys.exit("usage: python -m course_lib data {list,fetch} ...\n"
             "       python -m course_lib submit NN [--out FILE] [--notebook PATH]")
if sys.argv[1] == "data":
    from course_lib.core.data.command import main
else:
    from course_lib.core.handin import main
sys.exit(main(sys.argv[2:]))
