from django.contrib import admin

from .models import Claim, Document

admin.site.register(Claim)
admin.site.register(Document)
