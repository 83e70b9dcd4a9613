"""Prompt sets shipped with the package (written for this project), for `hades decode
--prompt-set` and the tests.

chat      open-ended chat prompts: answers run well past the default token budget, so every
          gamma decodes the same number of tokens per prompt (the Table I prompts of
          docs/PERFORMANCE.md)
grounded  input-grounded tasks: summarise, rewrite, extract from a given passage, continue
          or edit a given code snippet. The answer reuses text of the prompt, which is what
          prompt-lookup drafts (hades.llm.lookup) feed on, as in Hugging Face's and vLLM's
          prompt lookup; each prompt is at most a few hundred tokens.
"""
from __future__ import annotations

from hades.errors import ConfigError

CHAT_PROMPTS = (
    "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    "Explain how a hash table works and when you would use one.",
    "Give me a packing list and some advice for a week-long hiking trip in the mountains.",
)

_HARBOUR = """\
The harbour of Kelsey Cove was built in 1871 by the fishing families of the village, who \
carried the stones for the breakwater from a quarry two miles inland. For fifty years the \
harbour sheltered a fleet of about forty small boats that fished for herring and mackerel. \
When the herring disappeared from the bay in the 1920s, most of the boats were sold, and many \
young people left the village to work in the shipyards of the city. In 1958 a storm broke \
the outer part of the breakwater, and the harbour silted up. The village council repaired \
the breakwater in 1984 with money raised by a summer festival, and today the harbour is used \
by pleasure boats, a sailing school and three families who still fish for crab and lobster."""

_GEARS = """\
A bicycle has gears so that the rider can pedal at a comfortable speed on any road. The pedals \
turn a toothed wheel called the chainring, and a chain carries that motion to a smaller \
toothed wheel, the sprocket, fixed to the back wheel. When the chain runs on a large \
chainring and a small sprocket, one turn of the pedals turns the back wheel several times, \
so the bicycle goes fast but pedalling is hard. When the chain runs on a small chainring and \
a large sprocket, one turn of the pedals turns the back wheel less than once, so pedalling \
is easy but the bicycle goes slowly. The derailleur is the part that pushes the chain from \
one sprocket to the next when the rider moves the gear lever."""

_MINUTES = """\
Minutes of the library committee, 14 March 2024. Present: Ana Duarte (chair), Tom Fisher, \
Priya Nair and Georg Weber. Tom Fisher reported that the roof repair will cost 12,400 euros \
and can start on 2 May. Priya Nair said the reading club has grown to 38 members and asked \
for 600 euros to buy new books; the committee agreed. Georg Weber proposed opening the \
library on Sunday afternoons from June to September; the vote was postponed to the next \
meeting on 11 April 2024. The chair thanked the volunteers who sorted 2,000 donated books \
in February. The meeting closed at 8:45 pm."""

_INVENTORY = '''\
class Inventory:
    """Items in a shop, with their unit prices and quantities."""

    def __init__(self):
        self.prices = {}
        self.quantities = {}

    def add(self, name, price, quantity=1):
        """Add quantity units of an item at the given unit price."""
        if quantity < 1:
            raise ValueError("quantity must be at least 1")
        self.prices[name] = price
        self.quantities[name] = self.quantities.get(name, 0) + quantity

    def remove(self, name, quantity=1):
        """Remove quantity units of an item."""
        if self.quantities.get(name, 0) < quantity:
            raise ValueError(f"not enough {name} in stock")
        self.quantities[name] -= quantity
        if self.quantities[name] == 0:
            del self.quantities[name]
            del self.prices[name]'''

_STATS = '''\
def mean(values):
    total = 0
    for v in values:
        total += v
    return total / len(values)


def variance(values):
    m = mean(values)
    total = 0
    for v in values:
        total += (v - m) ** 2
    return total / len(values)


def normalise(values):
    m = mean(values)
    s = variance(values) ** 0.5
    return [(v - m) / s for v in values]'''

_BREAD = """\
To bake a simple loaf, mix 500 grams of flour with 10 grams of salt and 7 grams of dried \
yeast in a large bowl. Add 320 millilitres of warm water and stir until there is no dry flour \
left. Knead the dough on a floured table for ten minutes, until it is smooth and springs back \
when you press it. Put it back in the bowl, cover it with a cloth and leave it in a warm place \
for an hour, until it has doubled in size. Press the air out, shape the dough into a loaf and \
put it in an oiled tin. Leave it to rise for another forty minutes while the oven heats to 220 \
degrees. Bake the loaf for thirty minutes, until it is brown and sounds hollow when you tap \
the bottom, then let it cool on a rack before you cut it."""

# (name, task): the name labels the prompt in docs and tests
GROUNDED = (
    ("summarise", "Summarise the following passage in three sentences, keeping the dates.\n\n" + _HARBOUR),
    ("rewrite", "Rewrite the following passage in simple words for a ten-year-old, keeping every step of "
                "the explanation.\n\n" + _GEARS),
    ("extract", "List every person, date and amount of money mentioned in the following minutes, one per "
                "line, in the order they appear.\n\n" + _MINUTES),
    ("continue-code", "Continue the following Python class: add a method total_value that returns the value "
                      "of everything in stock and a __repr__, in the same style, and show the whole class.\n\n"
                      "```python\n" + _INVENTORY + "\n```"),
    ("edit-code", "Add type hints and a one-line docstring to every function in the following code. Change "
                  "nothing else and show the full code.\n\n```python\n" + _STATS + "\n```"),
    ("steps", "Turn the following recipe into a numbered list of steps, keeping every quantity.\n\n" + _BREAD),
)
GROUNDED_PROMPTS = tuple(text for _, text in GROUNDED)

PROMPT_SETS = {"chat": CHAT_PROMPTS, "grounded": GROUNDED_PROMPTS}
PROMPT_SET_CHOICES = ("grounded", "chat", "both")


def prompt_sets(name: str) -> dict[str, tuple[str, ...]]:
    """{set name: prompts} for 'chat', 'grounded' or 'both' (chat first, then grounded)."""
    if name == "both":
        return {"chat": CHAT_PROMPTS, "grounded": GROUNDED_PROMPTS}
    if name not in PROMPT_SETS:
        raise ConfigError(f"unknown prompt set {name!r}; expected one of {', '.join(PROMPT_SET_CHOICES)}")
    return {name: PROMPT_SETS[name]}
