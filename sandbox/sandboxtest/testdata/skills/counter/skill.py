import os

from skillware.core.base_skill import BaseSkill

COUNT = 0


class CounterSkill(BaseSkill):
    @property
    def manifest(self):
        return {"name": "counter"}

    def execute(self, params):
        global COUNT
        COUNT += 1
        mark = os.path.join(os.getcwd(), "counter-mark")
        saw = os.path.exists(mark)
        try:
            with open(mark, "w") as f:
                f.write("x")
            wrote = True
        except OSError:
            wrote = False
        return {"count": COUNT, "saw_mark": saw, "wrote_mark": wrote}
