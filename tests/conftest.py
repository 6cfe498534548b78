import os

import pytest

from spiders.profile import load_profile

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def profile():
    return load_profile("cpsia")
