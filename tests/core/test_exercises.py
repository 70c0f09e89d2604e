"""Exercise fences: the k-th student region of a function corresponds to the k-th solution block."""

from __future__ import annotations

import pytest

from course_lib.core.exercises import SOLUTION, STUDENT, MarkerError, is_stub, regions, strip_solutions

B, E = SOLUTION

SOURCE = f'''
class Layer:
    def forward(self, x):
        """Doc."""
        y = x * 2
        {B}
        z = y + 1
        {E}
        w = z
        {B}
        return w - 1
        {E}


def helper(x):
    return x


def loss(a, b):
    {B}
    return a - b
    {E}
'''


def test_solution_and_student_regions_pair_up():
    solution = regions(SOURCE)
    assert list(solution) == ["Layer.forward", "loss"]
    assert [r.text.strip() for r in solution["Layer.forward"]] == ["z = y + 1", "return w - 1"]
    student_text, n = strip_solutions(SOURCE)
    assert n == 3 and B not in student_text and STUDENT[0] in student_text
    student = regions(student_text)
    assert {k: len(v) for k, v in student.items()} == {"Layer.forward": 2, "loss": 1}
    assert all(is_stub(r) for v in student.values() for r in v)
    written = student_text.replace('raise NotImplementedError("exercise: write your solution here")',
                                   "return 0", 1)
    assert not is_stub(regions(written)["Layer.forward"][0])


def test_a_block_outside_a_function_names_its_line():
    with pytest.raises(MarkerError, match=r"mod\.py:2: a fenced block outside"):
        regions(f"x = 1\n{B}\ny = 2\n{E}\n", "mod.py")
