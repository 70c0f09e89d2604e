import sys

from course_lib.instructor.cli import main

sys.exit(main())
