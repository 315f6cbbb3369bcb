"""README.md fits on a screen and the documentation's links hold: every relative link of README.md
and docs/*.md names a file of the repository (and, with an anchor, a heading of that Markdown
file), and no file cites the design document that is not part of the repository."""
import glob
import os
import os.path as osp
import re

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAGES = [osp.join(ROOT, 'README.md')] + sorted(glob.glob(osp.join(ROOT, 'docs', '*.md')))
LINK = re.compile(r'\]\(([^)\s]+)\)')
SKIP_DIRS = {'.git', '.venv', 'data', 'work_dirs', 'outputs', '.pytest_cache', '__pycache__',
             '.mim', 'pmtseg_mm.egg-info'}


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r'[^\w\- ]', '', heading.strip().lower())
    return text.replace(' ', '-')


def _anchors(path: str) -> set:
    with open(path, encoding='utf-8') as f:
        text = re.sub(r'```.*?```', '', f.read(), flags=re.S)
    return {_slug(m) for m in re.findall(r'^#{1,6} (.+)$', text, flags=re.M)}


def test_readme_is_short_and_keeps_the_two_commands():
    with open(osp.join(ROOT, 'README.md'), encoding='utf-8') as f:
        text = f.read()
    assert len(text.splitlines()) <= 250
    assert 'bash tools/run_demo.sh' in text and 'bash tools/run_tests.sh' in text
    for page in ('architecture', 'benchmarks', 'inference', 'dataset_prepare', 'reliability'):
        assert f'](docs/{page}.md' in text, f'README does not link docs/{page}.md'


@pytest.mark.parametrize('page', PAGES, ids=[osp.relpath(p, ROOT) for p in PAGES])
def test_links_resolve(page):
    with open(page, encoding='utf-8') as f:
        text = f.read()
    broken = []
    for target in LINK.findall(text):
        if re.match(r'[a-z]+://', target) or target.startswith('mailto:'):
            continue
        path, _, anchor = target.partition('#')
        resolved = osp.normpath(osp.join(osp.dirname(page), path)) if path else page
        if not resolved.startswith(ROOT + os.sep) or not osp.exists(resolved):
            broken.append(target)
        elif anchor and resolved.endswith('.md') and anchor not in _anchors(resolved):
            broken.append(target)
    assert not broken, f'{osp.relpath(page, ROOT)}: links to nothing: {broken}'


def test_no_file_cites_the_missing_design_document():
    name = 'DESIGN' + '.md'
    citing = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
        for file in files:
            if not file.endswith(('.py', '.md', '.sh', '.yml', '.yaml', '.txt', '.cfg', '.toml')):
                continue
            path = osp.join(folder, file)
            with open(path, encoding='utf-8', errors='ignore') as f:
                if name in f.read():
                    citing.append(osp.relpath(path, ROOT))
    assert not citing, f'{name} is not in the repository but is cited by {citing}'
