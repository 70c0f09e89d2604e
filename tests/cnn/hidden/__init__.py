"""Instructor-only tests of this assignment: left out of the student release, run by the grader
(see course_lib.instructor.grading)."""
