"""The contacts the bot's own interface shows (welcome, fallback, /emergency line).

Only numbers that ../shared/facts.md marks VERIFIED, each with its source. Answers in the knowledge
base carry their own contacts; a test checks every number in both against facts.md.
"""

# LUCE Immigrant Justice Network of MA: report or verify ICE activity, rapid response.
# VERIFIED (two sources, 2025): Bulletin Newspapers (Hyde Park); CTN. Time-sensitive: re-dial.
LUCE_HOTLINE = "617-370-5023"
EMERGENCY = "911"
