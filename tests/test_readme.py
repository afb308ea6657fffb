"""The README's two set-up commands are exactly what CI runs."""
import re

from tests.conftest import ROOT


def test_readme_commands_match_ci():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, flags=re.S)
    install, tests = blocks[0].strip(), blocks[1].strip()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert install in ci and tests in ci
    # the first screen: both commands within the first 30 lines
    head = "\n".join(readme.splitlines()[:30])
    assert install in head and tests in head
